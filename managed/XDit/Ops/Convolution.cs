using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>2-D convolution and nearest upsampling for the VAE.</summary>
public static class Convolution
{
    /// <summary>x [N, Cin, H, W] ⊛ weight [Cout, Cin, kh, kw] + bias, zero padding, no dilation or groups.</summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0)
    {
        if (x.Rank != 4 || weight.Rank != 4)
            throw new XDitException(XditStatus.InvalidArgument, $"Conv2d needs x [N, Cin, H, W] and weight [Cout, Cin, kh, kw]; got {x} and {weight}");
        if (stride < 1 || padding < 0)
            throw new XDitException(XditStatus.InvalidArgument, $"strides must be >= 1 and padding >= 0, got stride {stride}, padding {padding}");
        var ho = (x.Size(2) + 2 * padding - weight.Size(2)) / stride + 1;
        var wo = (x.Size(3) + 2 * padding - weight.Size(3)) / stride + 1;
        return Operands.NewOutput(x.Context, x.DType, [x.Size(0), weight.Size(0), Math.Max(ho, 0), Math.Max(wo, 0)],
            o => Conv2d(x, weight, bias, stride, stride, padding, padding, o));
    }

    public static void Conv2d(Tensor x, Tensor weight, Tensor? bias, int strideH, int strideW, int padH, int padW, Tensor output)
    {
        var context = Operands.SameContext(x, weight, bias, output);
        FlopCounter.Add(2.0 * output.NumElements * weight.Size(1) * weight.Size(2) * weight.Size(3));
        var (dx, dw, dout) = (x.Descriptor, weight.Descriptor, output.Descriptor);
        ref readonly var db = ref Operands.Optional(bias, out var sb);
        NativeStatus.Check(NativeMethods.xdit_conv2d(context.Handle, in dx, in dw, in db, strideH, strideW, padH, padW, in dout));
    }

    /// <summary>Nearest-neighbour upsampling of [N, C, H, W] by an integer factor: a broadcast view of
    /// x (each pixel repeated factor×factor times) copied into the output, so no kernel of its own.</summary>
    public static Tensor UpsampleNearest(Tensor x, int factor = 2)
    {
        if (x.Rank != 4 || factor < 1)
            throw new XDitException(XditStatus.InvalidArgument, $"UpsampleNearest needs [N, C, H, W] and a factor >= 1; got {x}, {factor}");
        long n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        using var source = x.View6(n, c, h, w).Expand(n, c, h, factor, w, factor);
        return Operands.NewOutput(x.Context, x.DType, [n, c, h * factor, w * factor], o =>
        {
            using var target = o.View(n, c, h, factor, w, factor);
            Elementwise.Copy(source, target);
        });
    }

    // [N, C, H, W] as [N, C, H, 1, W, 1] without requiring contiguity.
    static Tensor View6(this Tensor x, long n, long c, long h, long w)
    {
        using var a = x.Unsqueeze(3);
        return a.Unsqueeze(5);
    }
}
