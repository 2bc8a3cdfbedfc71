using XDit.Native;

namespace XDit;

/// <summary>Which GEMM a CPU context uses.</summary>
public enum CpuGemm
{
    /// <summary>OpenBLAS when it can be loaded, otherwise the built-in kernel.</summary>
    Auto = XditCpuGemm.Auto,
    OpenBlas = XditCpuGemm.Openblas,
    Builtin = XditCpuGemm.Builtin,
}

/// <summary>Which instruction set the CPU kernels written for one (attention's inner loops) use.</summary>
public enum CpuIsa
{
    /// <summary>AVX2 + FMA when the processor has them, otherwise baseline x86-64.</summary>
    Auto = XditCpuIsa.Auto,
    /// <summary>AVX2 + FMA, or an <see cref="XditStatus.Unavailable"/> error where the processor lacks them.</summary>
    Avx2 = XditCpuIsa.AVX2,
    /// <summary>Plain C++ kernels that run on any x86-64 processor: for checks and comparisons.</summary>
    Baseline = XditCpuIsa.Baseline,
}

/// <summary>How to create a <see cref="DeviceContext"/>.</summary>
public sealed record ContextOptions
{
    /// <summary>CPU threads the context's kernels may use; 0 = every hardware thread.</summary>
    public int NumThreads { get; init; }

    public CpuGemm CpuGemm { get; init; } = CpuGemm.Auto;

    public CpuIsa CpuIsa { get; init; } = CpuIsa.Auto;

    /// <summary>Allocations that would hold more than this many bytes fail; 0 = no limit.</summary>
    public ulong MemoryLimitBytes { get; init; }
}

/// <summary>Byte counts of a context's caching allocator.</summary>
public readonly record struct AllocatorStats(
    ulong BytesInUse, ulong PeakBytesInUse, ulong BytesCached, ulong BytesReserved, ulong AllocationCount,
    ulong CacheHitCount);

/// <summary>
/// One device with its stream, caching allocator and thread budget: what one rank computes on.
/// Every tensor belongs to one context. Work on a context is ordered; a context may be used from any
/// thread, but not from two threads at once.
/// </summary>
public sealed class DeviceContext : IDisposable
{
    DeviceContext(ContextHandle handle, Device device, XditContextOptions resolved)
    {
        Handle = handle;
        Device = device;
        NumThreads = resolved.num_threads;
        CpuGemm = (CpuGemm)resolved.cpu_gemm;
        CpuIsa = (CpuIsa)resolved.cpu_isa;
        MemoryLimitBytes = resolved.memory_limit_bytes;
    }

    internal ContextHandle Handle { get; }

    public Device Device { get; }

    /// <summary>CPU threads the context's kernels use (resolved from the options).</summary>
    public int NumThreads { get; }

    /// <summary>The GEMM the context uses on the CPU (Auto resolved to what was found).</summary>
    public CpuGemm CpuGemm { get; }

    /// <summary>The instruction set of the context's CPU kernels (Auto resolved to what the processor has).</summary>
    public CpuIsa CpuIsa { get; }

    public ulong MemoryLimitBytes { get; }

    public bool IsDisposed => Handle.IsClosed;

    /// <summary>Creates a context; a CUDA device that is missing or unusable is an
    /// <see cref="XDitException"/> with status <see cref="XditStatus.Unavailable"/>.</summary>
    public static DeviceContext Create(Device device, ContextOptions? options = null)
    {
        XDitLibrary.EnsureLoaded();
        options ??= new ContextOptions();
        var native = new XditContextOptions
        {
            device_kind = (int)device.Kind,
            device_index = device.Index,
            num_threads = options.NumThreads,
            cpu_gemm = (int)options.CpuGemm,
            cpu_isa = (int)options.CpuIsa,
            memory_limit_bytes = options.MemoryLimitBytes,
        };
        NativeStatus.Check(NativeMethods.xdit_context_create(in native, out var handle));
        try
        {
            NativeStatus.Check(NativeMethods.xdit_context_get_options(handle, out var resolved));
            return new DeviceContext(handle, device, resolved);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public static DeviceContext Cpu(int numThreads = 0) => Create(Device.Cpu, new ContextOptions { NumThreads = numThreads });

    public AllocatorStats AllocatorStats
    {
        get
        {
            NativeStatus.Check(NativeMethods.xdit_context_allocator_stats(Handle, out var s));
            return new AllocatorStats(s.bytes_in_use, s.peak_bytes_in_use, s.bytes_cached, s.bytes_reserved,
                s.allocation_count, s.cache_hit_count);
        }
    }

    /// <summary>Waits until all work issued on this context has finished.</summary>
    public void Synchronize() => NativeStatus.Check(NativeMethods.xdit_context_synchronize(Handle));

    /// <summary>Marks this point of the context's work, for timing it (<see cref="DeviceMark.Since"/>).</summary>
    public DeviceMark Mark()
    {
        NativeStatus.Check(NativeMethods.xdit_context_mark(Handle, out var handle));
        return new DeviceMark(handle);
    }

    /// <summary>Captures the work <paramref name="work"/> issues on this context as a graph, without running
    /// it: a CUDA graph of the context's stream, or on the CPU the recorded op calls. Launch the graph to
    /// run it (<see cref="DeviceGraph.Launch"/>); see <see cref="DeviceGraph"/> for what a capture may do.</summary>
    /// <returns>The graph and what <paramref name="work"/> returned (tensors allocated during the capture
    /// belong to the graph's memory: each launch writes them again).</returns>
    public (DeviceGraph Graph, T Result) Capture<T>(Func<T> work)
    {
        ArgumentNullException.ThrowIfNull(work);
        NativeStatus.Check(NativeMethods.xdit_graph_begin(Handle));
        T result;
        try
        {
            result = work();
        }
        catch
        {
            // Leave capture mode; the capture's own error is the one to report.
            if (NativeMethods.xdit_graph_end(Handle, out var abandoned) == XditStatus.Ok) abandoned.Dispose();
            throw;
        }
        NativeStatus.Check(NativeMethods.xdit_graph_end(Handle, out var graph));
        return (new DeviceGraph(graph), result);
    }

    /// <summary>Returns the allocator's cached blocks to the system.</summary>
    public void ReleaseCached() => NativeStatus.Check(NativeMethods.xdit_context_release_cached(Handle));

    public void ResetPeak() => NativeStatus.Check(NativeMethods.xdit_context_reset_peak(Handle));

    /// <summary>Releases the caller's reference; the native context lives on until its last buffer is freed.</summary>
    public void Dispose() => Handle.Dispose();

    public override string ToString() => $"{Device} ({NumThreads} threads)";
}
