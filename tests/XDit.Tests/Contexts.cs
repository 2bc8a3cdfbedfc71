using XDit.Native;

namespace XDit.Tests;

/// <summary>Contexts for tests. CUDA tests call <see cref="CudaOrIgnore"/> so that they report as
/// skipped, not passed, on machines without a usable GPU.</summary>
internal static class Contexts
{
    public static DeviceContext Cpu(CpuGemm gemm = CpuGemm.Auto, int threads = 0, ulong memoryLimit = 0) =>
        DeviceContext.Create(Device.Cpu, new ContextOptions { CpuGemm = gemm, NumThreads = threads, MemoryLimitBytes = memoryLimit });

    public static DeviceContext CudaOrIgnore()
    {
        var info = XDitLibrary.GetBuildInfo();
        if (!info.CudaCompiled) Assert.Ignore("the native library was built without CUDA");
        if (info.CudaDeviceCount == 0) Assert.Ignore("no CUDA device on this machine");
        return DeviceContext.Create(Device.Cuda(0));
    }

    /// <summary>The CPU GEMM variants this machine can run: the built-in kernel always, OpenBLAS when found.</summary>
    public static IEnumerable<CpuGemm> CpuGemms()
    {
        yield return CpuGemm.Builtin;
        yield return CpuGemm.OpenBlas;
    }

    public static DeviceContext CpuWith(CpuGemm gemm)
    {
        if (gemm == CpuGemm.OpenBlas && !XDitLibrary.GetBuildInfo().OpenBlasLoaded)
            Assert.Ignore("OpenBLAS (libopenblas.so.0) is not installed");
        return Cpu(gemm);
    }

    /// <summary>Whether this processor runs the AVX2 kernels (as the native library decides it).</summary>
    public static bool HasAvx2 =>
        System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported;

    /// <summary>The CPU kernel instruction sets this machine can run: baseline always, AVX2 where present.</summary>
    public static IEnumerable<CpuIsa> CpuIsas()
    {
        yield return CpuIsa.Baseline;
        if (HasAvx2) yield return CpuIsa.Avx2;
    }

    public static DeviceContext Cpu(CpuIsa isa) => DeviceContext.Create(Device.Cpu, new ContextOptions { CpuIsa = isa });

    public static XditStatus StatusOf(Action action) =>
        Assert.Throws<XDitException>(() => action())!.Status;
}
