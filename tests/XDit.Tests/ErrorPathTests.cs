using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Bad input comes back as a typed exception with a precise message; the process and the
/// context stay usable.</summary>
[TestFixture]
public class ErrorPathTests
{
    [Test]
    public void WrongShapeGemmNamesBothShapesAndTheNextCallWorks()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Tensor.Zeros(context, DType.F32, 2, 3, 5);
        var b = Tensor.Zeros(context, DType.F32, 4, 6);
        var error = Assert.Throws<XDitException>(() => MatMul.Gemm(a, b))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("[2, 3, 5]").And.Contain("[4, 6]"));
        Assert.That(error.Message, Does.StartWith("xdit_gemm:"));

        var ok = MatMul.Gemm(a, Tensor.Full(context, DType.F32, 1, 4, 5));
        Assert.That(ok.ToArray<float>(), Is.All.EqualTo(0f));
    }

    [Test]
    public void MismatchedDtypesAndOutputShapesAreNamed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Tensor.Zeros(context, DType.F32, 3, 5);
        var b16 = Tensor.Zeros(context, DType.F16, 4, 5);
        Assert.That(Assert.Throws<XDitException>(() => MatMul.Gemm(a, b16))!.Message,
            Does.Contain("f32 [3, 5]").And.Contain("f16 [4, 5]").And.Contain("same dtype"));
        var b = Tensor.Zeros(context, DType.F32, 4, 5);
        var wrongOut = Tensor.Zeros(context, DType.F32, 3, 5);
        Assert.That(Assert.Throws<XDitException>(() => MatMul.Gemm(a, b, null, wrongOut))!.Message,
            Does.Contain("out (f32 [3, 5])").And.Contain("[..., 3, 4]"));
        var wrongBias = Tensor.Zeros(context, DType.F32, 5);
        Assert.That(Assert.Throws<XDitException>(() => MatMul.Gemm(a, b, wrongBias))!.Message,
            Does.Contain("bias (f32 [5])").And.Contain("expected [4]"));
        var x = Tensor.Zeros(context, DType.F32, 2, 3);
        var y = Tensor.Zeros(context, DType.F32, 3, 2);
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.Copy(x, y))!.Message,
            Does.Contain("[2, 3]").And.Contain("[3, 2]"));
    }

    [Test]
    public void OverlappingOutputIsRejected()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var source = Tensor.Zeros(context, DType.F32, 3);
        var broadcast = Tensor.Zeros(context, DType.F32, 1).Expand(3);
        var error = Assert.Throws<XDitException>(() => Elementwise.Copy(source, broadcast))!;
        Assert.That(error.Message, Does.Contain("overlap"));
    }

    [Test]
    public void NullHandlesAreErrorsNotCrashes()
    {
        using var nullContext = new ContextHandle();
        var t = default(XditTensor);
        Assert.That(NativeMethods.xdit_fill(nullContext, in t, 0), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("context is null"));
        using var nullBuffer = new BufferHandle();
        Assert.That(NativeMethods.xdit_buffer_size(nullBuffer, out _), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("buffer is null"));
        using var context = Contexts.Cpu();
        Assert.That(NativeMethods.xdit_fill(context.Handle, in System.Runtime.CompilerServices.Unsafe.NullRef<XditTensor>(), 0),
            Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("tensor out is null"));
    }

    [Test]
    public void InvalidDescriptorsAreRejected()
    {
        using var context = Contexts.Cpu();
        var bogusDtype = XditTensor.Create(1, (XditDtype)42, [2], [1]);
        Assert.That(NativeMethods.xdit_fill(context.Handle, in bogusDtype, 0), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("unknown dtype 42"));
        var nullData = XditTensor.Create(0, XditDtype.F32, [2, 2], [2, 1]);
        Assert.That(NativeMethods.xdit_fill(context.Handle, in nullData, 0), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("data pointer is null"));
        var negative = XditTensor.Create(1, XditDtype.F32, [-2], [1]);
        Assert.That(NativeMethods.xdit_fill(context.Handle, in negative, 0), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("negative dimension"));
        var tooBig = XditTensor.Create(1, XditDtype.F32, [1L << 40, 1L << 40], [1L << 40, 1]);
        Assert.That(NativeMethods.xdit_fill(context.Handle, in tooBig, 0), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("too many elements"));
    }

    [Test]
    public void BufferRangesAreChecked()
    {
        using var context = Contexts.Cpu();
        NativeStatus.Check(NativeMethods.xdit_buffer_alloc(context.Handle, 16, out var buffer));
        using (buffer)
        {
            var bytes = new byte[8];
            Assert.That(NativeMethods.xdit_buffer_write(buffer, 12, in bytes[0], 8), Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(NativeStatus.LastError(), Does.Contain("outside the buffer of 16 bytes"));
            Assert.That(NativeMethods.xdit_buffer_read(buffer, ulong.MaxValue, ref bytes[0], 8), Is.EqualTo(XditStatus.InvalidArgument));
        }
    }

    [Test]
    public void DisposedObjectsThrowObjectDisposed()
    {
        var context = Contexts.Cpu();
        var t = Tensor.Zeros(context, DType.F32, 4);
        t.Dispose();
        Assert.Throws<ObjectDisposedException>(() => t.ToArray<float>());
        Assert.Throws<ObjectDisposedException>(() => Elementwise.Fill(t, 1));
        t.Dispose(); // twice is harmless
        context.Dispose();
        Assert.Throws<ObjectDisposedException>(() => context.Synchronize());
        Assert.Throws<ObjectDisposedException>(() => Tensor.Empty(context, DType.F32, 2));
    }

    [Test]
    public void TensorsOutliveTheirDisposedContext()
    {
        // The native buffer keeps its context alive; disposing the managed context first is safe.
        var context = Contexts.Cpu();
        var t = Tensor.FromArray(context, new[] { 1f, 2f, 3f }, 3);
        context.Dispose();
        Assert.That(t.ToArray<float>(), Is.EqualTo(new[] { 1f, 2f, 3f }));
        t.Dispose();
    }

    [Test]
    public void CudaWithoutAGpuIsAClearError()
    {
        var info = XDitLibrary.GetBuildInfo();
        if (info.CudaCompiled && info.CudaDeviceCount > 0) Assert.Ignore("this machine has a CUDA device");
        var error = Assert.Throws<XDitException>(() => DeviceContext.Create(Device.Cuda(0)))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.Unavailable));
        Assert.That(error.Message, info.CudaCompiled
            ? Does.Contain("no usable CUDA device").Or.Contain("device(s) are visible")
            : Does.Contain("built without CUDA"));
        using var cpu = Contexts.Cpu();
        using var t = Tensor.Full(cpu, DType.F32, 2, 2);
        Assert.That(t.ToArray<float>(), Is.EqualTo(new[] { 2f, 2f }));
    }

    [Test]
    public void HostTypeMustMatchTheDtype()
    {
        using var context = Contexts.Cpu();
        using var t = Tensor.Zeros(context, DType.BF16, 3);
        var error = Assert.Throws<ArgumentException>(() => t.ToArray<float>())!;
        Assert.That(error.Message, Does.Contain("bf16").And.Contain("To(DType.F32)"));
    }

    [Test]
    public void BadOptionsAreRejected()
    {
        Assert.That(Contexts.StatusOf(() => DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = -1 })),
            Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(Contexts.StatusOf(() => DeviceContext.Create(new Device(DeviceKind.Cpu, 1))),
            Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(Contexts.StatusOf(() => DeviceContext.Create(new Device((DeviceKind)7, 0))),
            Is.EqualTo(XditStatus.InvalidArgument));
        Assert.Throws<ArgumentException>(() => Device.Parse("tpu:0"));
        Assert.That(Device.Parse("cuda:3"), Is.EqualTo(Device.Cuda(3)));
    }
}
