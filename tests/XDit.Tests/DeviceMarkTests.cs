using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Timing marks (<see cref="DeviceContext.Mark"/>): the host clock on the CPU, CUDA events on a GPU.</summary>
[TestFixture]
public class DeviceMarkTests
{
    [Test]
    public void OnTheCpuMarksMeasureTheHostTimeBetweenThem()
    {
        using var context = Contexts.Cpu(threads: 1);
        using var start = context.Mark();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Thread.Sleep(60);
        using var end = context.Mark();
        var measured = end.Since(start);
        Assert.That(measured.TotalMilliseconds, Is.GreaterThanOrEqualTo(59).And.LessThanOrEqualTo(clock.Elapsed.TotalMilliseconds + 1));
        Assert.That(start.Since(end), Is.LessThan(TimeSpan.Zero));
    }

    [Test]
    public void MarksOfTwoContextsAreNotCompared()
    {
        using var a = Contexts.Cpu(threads: 1);
        using var b = Contexts.Cpu(threads: 1);
        using var start = a.Mark();
        using var end = b.Mark();
        var error = Assert.Throws<XDitException>(() => end.Since(start))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("different contexts"));
    }

    /// <summary>On a GPU the events bracket the device's work: a long kernel queue takes device time even though
    /// the host only enqueued it.</summary>
    [Test]
    [Category("GPU")]
    public void OnCudaMarksMeasureTheDeviceWork()
    {
        using var cuda = Contexts.CudaOrIgnore();
        using var scope = new TensorScope();
        var data = Tensor.Zeros(cuda, DType.F32, 1 << 24);
        using var start = cuda.Mark();
        for (int i = 0; i < 50; i++) Elementwise.Affine(data, 1, 1, data);
        using var end = cuda.Mark();
        var measured = end.Since(start);
        // 50 passes over 64 MiB read and written: at least 6.7 GB moved, under 5 TB/s needs ≥ 1.3 ms.
        Assert.That(measured.TotalMilliseconds, Is.GreaterThan(1.3));
        Assert.That(data.ToArray<float>()[12345], Is.EqualTo(50f));
    }
}
