using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Fill, copy/cast and elementwise arithmetic. Inputs broadcast NumPy-style (through
/// zero-stride views); outputs take any non-overlapping layout.</summary>
public static class Elementwise
{
    public static void Fill(Tensor output, double value)
    {
        var d = output.Descriptor;
        NativeStatus.Check(NativeMethods.xdit_fill(output.Context.Handle, in d, value));
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="output"/> (same shape), converting
    /// the dtype: floats round to nearest even; integers and bool convert among themselves and to float.</summary>
    public static void Copy(Tensor source, Tensor output)
    {
        var context = Operands.SameContext(source, output);
        var s = source.Descriptor;
        var o = output.Descriptor;
        NativeStatus.Check(NativeMethods.xdit_copy(context.Handle, in s, in o));
    }

    public static Tensor Add(Tensor a, Tensor b) => Binary(XditBinaryOp.Add, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Binary(XditBinaryOp.Mul, a, b);
    public static void Add(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Add, a, b, output);
    public static void Mul(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Mul, a, b, output);

    static Tensor Binary(XditBinaryOp op, Tensor a, Tensor b)
    {
        Operands.SameContext(a, b);
        var output = Tensor.Empty(a.Context, a.DType, Shapes.Broadcast(a.Shape, b.Shape));
        try
        {
            Binary(op, a, b, output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }

    static void Binary(XditBinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        var context = Operands.SameContext(a, b, output);
        var shape = output.Shape.ToArray();
        using var ea = Broadcast(a, shape);
        using var eb = Broadcast(b, shape);
        var da = ea.Descriptor;
        var db = eb.Descriptor;
        var dout = output.Descriptor;
        NativeStatus.Check(NativeMethods.xdit_binary(context.Handle, (int)op, in da, in db, in dout));
    }

    static Tensor Broadcast(Tensor t, long[] shape)
    {
        if (t.Rank > shape.Length || !Shapes.Equal(Shapes.Broadcast(t.Shape, shape), shape))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{t} does not broadcast to the output shape {Shapes.ToString(shape)}");
        return t.Expand(shape);
    }
}
