using XDit.Native;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The caching allocator's statistics, deterministic disposal and the memory limit.</summary>
[TestFixture]
public class MemoryTests
{
    [Test]
    public void DisposalReturnsTheAllocatorToItsStartingBytes()
    {
        using var context = Contexts.Cpu();
        var start = context.AllocatorStats.BytesInUse;
        var a = Tensor.Zeros(context, DType.F32, 100, 100);
        var view = a.Transpose(0, 1);
        var b = a.To(DType.BF16);
        Assert.That(context.AllocatorStats.BytesInUse, Is.GreaterThanOrEqualTo(start + 40_000 + 20_000));
        a.Dispose();
        Assert.That(context.AllocatorStats.BytesInUse, Is.GreaterThanOrEqualTo(start + 60_000), "a view keeps the memory alive");
        view.Dispose();
        b.Dispose();
        var stats = context.AllocatorStats;
        Assert.That(stats.BytesInUse, Is.EqualTo(start));
        Assert.That(stats.PeakBytesInUse, Is.GreaterThanOrEqualTo(60_000UL));
        Assert.That(stats.BytesCached, Is.GreaterThanOrEqualTo(60_000UL));
        context.ReleaseCached();
        Assert.That(context.AllocatorStats.BytesCached, Is.Zero);
        Assert.That(context.AllocatorStats.BytesReserved, Is.EqualTo(start));
    }

    [Test]
    public void TheCacheServesRepeatedAllocations()
    {
        using var context = Contexts.Cpu();
        for (int i = 0; i < 10; i++) Tensor.Zeros(context, DType.F32, 1000).Dispose();
        var stats = context.AllocatorStats;
        Assert.That(stats.AllocationCount, Is.EqualTo(10UL));
        Assert.That(stats.CacheHitCount, Is.EqualTo(9UL));
    }

    [Test]
    public void ScopeFreesEverythingCreatedInside()
    {
        using var context = Contexts.Cpu();
        var start = context.AllocatorStats.BytesInUse;
        Tensor kept;
        using (var outer = new TensorScope())
        {
            using (var inner = new TensorScope())
            {
                var x = Tensor.Full(context, DType.F32, 2, 64, 64);
                var y = Ops.Elementwise.Mul(x, x);
                _ = y.Narrow(0, 0, 10);
                kept = Ops.Elementwise.Add(y, x).MoveToOuterScope();
                Assert.That(inner.Count, Is.EqualTo(3));
            }
            Assert.That(outer.Count, Is.EqualTo(1));
            Assert.That(kept.ToArray<float>()[0], Is.EqualTo(6f));
        }
        Assert.That(kept.IsDisposed, Is.True);
        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(start));
    }

    [Test]
    public void MemoryLimitFailsCleanlyAndTheContextStaysUsable()
    {
        using var context = Contexts.Cpu(memoryLimit: 1 << 20);
        using var small = Tensor.Zeros(context, DType.F32, 1024);
        var error = Assert.Throws<XDitException>(() => Tensor.Empty(context, DType.F32, 1 << 20))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.OutOfMemory));
        Assert.That(error.Message, Does.Contain("limit of 1 MiB"));
        using var after = Tensor.Full(context, DType.F32, 3, 1024);
        Assert.That(after.ToArray<float>().Sum(), Is.EqualTo(3072f));
        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(8192UL));
    }

    sealed class NativeBlock(int bytes) : IDisposable
    {
        public unsafe nint Address { get; } = (nint)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)bytes);
        public bool Disposed { get; private set; }
        public void Dispose()
        {
            if (Disposed) return;
            Disposed = true;
            unsafe { System.Runtime.InteropServices.NativeMemory.Free((void*)Address); }
        }
    }

    [Test]
    public void WrappedHostMemoryIsUsedWithoutACopy()
    {
        using var context = Contexts.Cpu();
        var block = new NativeBlock(6 * sizeof(float));
        var values = new[] { 1f, 2f, 3f, 4f, 5f, 6f };
        System.Runtime.InteropServices.Marshal.Copy(values, 0, block.Address, 6);
        var start = context.AllocatorStats;
        var t = Tensor.Wrap(context, block.Address, DType.F32, [2, 3], block);
        var view = t.Transpose(0, 1);
        t.Dispose();
        Assert.That(view.Contiguous().ToArray<float>(), Is.EqualTo(new[] { 1f, 4f, 2f, 5f, 3f, 6f }));
        Assert.That(block.Disposed, Is.False, "a live view keeps the memory");
        Assert.That(context.AllocatorStats.AllocationCount, Is.EqualTo(start.AllocationCount + 1), "only the Contiguous copy allocates");
        view.Dispose();
        Assert.That(block.Disposed, Is.True, "the owner is released with the last view");
    }

    [Test]
    public void ContextsHonourTheirThreadBudget()
    {
        using var one = Contexts.Cpu(threads: 1);
        using var all = Contexts.Cpu();
        Assert.That(one.NumThreads, Is.EqualTo(1));
        Assert.That(all.NumThreads, Is.EqualTo(Environment.ProcessorCount));
        Assert.That(all.CpuGemm, Is.EqualTo(XDitLibrary.GetBuildInfo().OpenBlasLoaded ? CpuGemm.OpenBlas : CpuGemm.Builtin));
    }

    [Test]
    public void ConcurrentContextsOnManyThreads()
    {
        // Eight contexts on eight threads, as in-process ranks will run: results equal the serial run.
        var results = new float[8][];
        System.Threading.Tasks.Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, rank =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var scope = new TensorScope();
            var a = Tensor.Full(context, DType.F32, rank + 1, 17, 33);
            var w = Tensor.Full(context, DType.F32, 0.5, 9, 33);
            results[rank] = Ops.MatMul.Gemm(a, w).ToArray<float>();
        });
        for (int rank = 0; rank < 8; rank++)
            Assert.That(results[rank], Is.All.EqualTo((rank + 1) * 0.5f * 33));
    }
}
