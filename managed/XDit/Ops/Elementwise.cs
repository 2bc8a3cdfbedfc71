using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Elementwise functions of one tensor.</summary>
public enum UnaryOp
{
    GeluTanh = XditUnaryOp.GeluTanh,
    GeluErf = XditUnaryOp.GeluErf,
    Silu = XditUnaryOp.Silu,
    Exp = XditUnaryOp.Exp,
    Abs = XditUnaryOp.Abs,
    Neg = XditUnaryOp.Neg,
    /// <summary>sin, evaluated in double and rounded once.</summary>
    Sin = XditUnaryOp.Sin,
    /// <summary>cos, evaluated in double and rounded once.</summary>
    Cos = XditUnaryOp.Cos,
}

/// <summary>Fill, copy/cast and pointwise arithmetic, computed in fp32 whatever the storage dtype.
/// Inputs broadcast NumPy-style (through zero-stride views); outputs take any non-overlapping layout
/// and may be one of the inputs (in place).</summary>
public static class Elementwise
{
    public static void Fill(Tensor output, double value)
    {
        var d = output.Descriptor;
        NativeStatus.Check(NativeMethods.xdit_fill(output.Context.Handle, in d, value));
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="output"/> (same shape), converting
    /// the dtype: floats round to nearest even; integers and bool convert among themselves and to float.
    /// The output's context runs the copy. <paramref name="source"/> may belong to another context of the
    /// same kind of device (an in-process rank's): the copy then follows the work issued there so far, and
    /// that context's later work waits for it.</summary>
    public static void Copy(Tensor source, Tensor output)
    {
        var s = source.Descriptor;
        var o = output.Descriptor;
        if (ReferenceEquals(source.Context, output.Context))
            NativeStatus.Check(NativeMethods.xdit_copy(output.Context.Handle, in s, in o));
        else
            NativeStatus.Check(NativeMethods.xdit_copy_from(output.Context.Handle, source.Context.Handle, in s, in o));
    }

    public static Tensor Add(Tensor a, Tensor b) => Binary(XditBinaryOp.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => Binary(XditBinaryOp.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Binary(XditBinaryOp.Mul, a, b);
    public static Tensor Div(Tensor a, Tensor b) => Binary(XditBinaryOp.Div, a, b);
    public static Tensor Max(Tensor a, Tensor b) => Binary(XditBinaryOp.Max, a, b);
    public static void Add(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Add, a, b, output);
    public static void Sub(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Sub, a, b, output);
    public static void Mul(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Mul, a, b, output);
    public static void Div(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Div, a, b, output);
    public static void Max(Tensor a, Tensor b, Tensor output) => Binary(XditBinaryOp.Max, a, b, output);

    public static Tensor Unary(UnaryOp op, Tensor x) => Operands.NewOutput(x, o => Unary(op, x, o));

    public static void Unary(UnaryOp op, Tensor x, Tensor output) =>
        Map(x, output, (c, dx, dout) => NativeMethods.xdit_unary(c, (int)op, in dx, in dout));

    /// <summary>alpha·x + beta.</summary>
    public static Tensor Affine(Tensor x, double alpha, double beta = 0) => Operands.NewOutput(x, o => Affine(x, alpha, beta, o));

    public static void Affine(Tensor x, double alpha, double beta, Tensor output) =>
        Map(x, output, (c, dx, dout) => NativeMethods.xdit_affine(c, in dx, alpha, beta, in dout));

    public static Tensor Clamp(Tensor x, double low, double high) => Operands.NewOutput(x, o => Clamp(x, low, high, o));

    public static void Clamp(Tensor x, double low, double high, Tensor output) =>
        Map(x, output, (c, dx, dout) => NativeMethods.xdit_clamp(c, in dx, low, high, in dout));

    /// <summary>a + weight·(b − a): classifier-free guidance is <c>Lerp(uncond, cond, scale)</c>.</summary>
    public static Tensor Lerp(Tensor a, Tensor b, double weight) =>
        Operands.NewOutput(a.Context, a.DType, Operands.BroadcastShape(a, b), o => Lerp(a, b, weight, o));

    public static void Lerp(Tensor a, Tensor b, double weight, Tensor output)
    {
        var context = Operands.SameContext(a, b, output);
        using var ea = Operands.BroadcastTo(a, output.Shape, "a");
        using var eb = Operands.BroadcastTo(b, output.Shape, "b");
        var (da, db, dout) = (ea.Descriptor, eb.Descriptor, output.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_lerp(context.Handle, in da, in db, weight, in dout));
    }

    /// <summary>a + b ⊙ c, broadcast: the gated residual <c>x + gate·y</c> of DiT blocks.</summary>
    public static Tensor AddMul(Tensor a, Tensor b, Tensor c) =>
        Operands.NewOutput(a.Context, a.DType, Operands.BroadcastShape(a, b, c), o => AddMul(a, b, c, o));

    public static void AddMul(Tensor a, Tensor b, Tensor c, Tensor output)
    {
        var context = Operands.SameContext(a, b, c, output);
        using var ea = Operands.BroadcastTo(a, output.Shape, "a");
        using var eb = Operands.BroadcastTo(b, output.Shape, "b");
        using var ec = Operands.BroadcastTo(c, output.Shape, "c");
        var (da, db, dc, dout) = (ea.Descriptor, eb.Descriptor, ec.Descriptor, output.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_add_mul(context.Handle, in da, in db, in dc, in dout));
    }

    /// <summary>activation(gate) ⊙ up: GEGLU (pass the two halves of one projection) and T5's gated GELU.</summary>
    public static Tensor GatedActivation(UnaryOp activation, Tensor gate, Tensor up) =>
        Operands.NewOutput(gate, o => GatedActivation(activation, gate, up, o));

    public static void GatedActivation(UnaryOp activation, Tensor gate, Tensor up, Tensor output)
    {
        var context = Operands.SameContext(gate, up, output);
        var (dg, du, dout) = (gate.Descriptor, up.Descriptor, output.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_gated_activation(context.Handle, (int)activation, in dg, in du, in dout));
    }

    /// <summary>Σ|a − b| (or Σ|a| without b), accumulated in fp64; waits for the result.</summary>
    public static double AbsSum(Tensor a, Tensor? b = null)
    {
        var context = Operands.SameContext(a, b);
        using var result = Tensor.Empty(context, DType.F32);
        var da = a.Descriptor;
        var dout = result.Descriptor;
        ref readonly var db = ref Operands.Optional(b, out var storage);
        NativeStatus.Check(NativeMethods.xdit_reduce_abs_sum(context.Handle, in da, in db, in dout));
        return result.ToArray<float>()[0];
    }

    /// <summary>Σ|a − b| / Σ|b|: the relative change step caching (TeaCache, First-Block-Cache) decides on.</summary>
    public static double RelativeL1(Tensor a, Tensor b) => AbsSum(a, b) / AbsSum(b);

    /// <summary>Softmax over the last dimension.</summary>
    public static Tensor Softmax(Tensor x) => Operands.NewOutput(x, o => Softmax(x, o));

    public static void Softmax(Tensor x, Tensor output) =>
        Map(x, output, (c, dx, dout) => NativeMethods.xdit_softmax(c, in dx, in dout));

    delegate XditStatus UnaryCall(ContextHandle context, XditTensor x, XditTensor output);

    static void Map(Tensor x, Tensor output, UnaryCall call)
    {
        var context = Operands.SameContext(x, output);
        NativeStatus.Check(call(context.Handle, x.Descriptor, output.Descriptor));
    }

    static Tensor Binary(XditBinaryOp op, Tensor a, Tensor b)
    {
        Operands.SameContext(a, b);
        return Operands.NewOutput(a.Context, a.DType, Operands.BroadcastShape(a, b), o => Binary(op, a, b, o));
    }

    static void Binary(XditBinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        var context = Operands.SameContext(output, a, b);
        using var ea = Operands.BroadcastTo(a, output.Shape, "a");
        using var eb = Operands.BroadcastTo(b, output.Shape, "b");
        var (da, db, dout) = (ea.Descriptor, eb.Descriptor, output.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_binary(context.Handle, (int)op, in da, in db, in dout));
    }
}
