using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Layer, RMS and group normalisation; statistics in fp64 on the CPU, fp32 at least elsewhere.</summary>
public static class Normalization
{
    /// <summary>
    /// <c>((x − mean)/√(var + eps)·weight + bias)·(1 + scale) + shift</c> over the last dimension. weight
    /// and bias are [C] or null; scale and shift broadcast to x (e.g. [B, 1, C] for the adaLN modulation
    /// of a DiT block) or are null.
    /// </summary>
    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, double eps, Tensor? scale = null, Tensor? shift = null) =>
        Operands.NewOutput(x, o => LayerNorm(x, weight, bias, eps, scale, shift, o));

    public static void LayerNorm(Tensor x, Tensor? weight, Tensor? bias, double eps, Tensor? scale, Tensor? shift, Tensor output)
    {
        var context = Operands.SameContext(x, weight, bias, scale, shift, output);
        using var es = scale is null ? null : Operands.BroadcastTo(scale, x.Shape, "scale");
        using var eh = shift is null ? null : Operands.BroadcastTo(shift, x.Shape, "shift");
        var dx = x.Descriptor;
        var dout = output.Descriptor;
        ref readonly var dw = ref Operands.Optional(weight, out var sw);
        ref readonly var db = ref Operands.Optional(bias, out var sb);
        ref readonly var ds = ref Operands.Optional(es, out var ss);
        ref readonly var dh = ref Operands.Optional(eh, out var sh);
        NativeStatus.Check(NativeMethods.xdit_layer_norm(context.Handle, in dx, in dw, in db, in ds, in dh, eps, in dout));
    }

    /// <summary><c>x/√(mean(x²) + eps)·weight</c> over the last dimension (T5LayerNorm, q/k norms).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor? weight, double eps) => Operands.NewOutput(x, o => RmsNorm(x, weight, eps, o));

    public static void RmsNorm(Tensor x, Tensor? weight, double eps, Tensor output)
    {
        var context = Operands.SameContext(x, weight, output);
        var dx = x.Descriptor;
        var dout = output.Descriptor;
        ref readonly var dw = ref Operands.Optional(weight, out var sw);
        NativeStatus.Check(NativeMethods.xdit_rms_norm(context.Handle, in dx, in dw, eps, in dout));
    }

    /// <summary>Group norm of x [N, C, spatial...] with <paramref name="groups"/> groups of channels.</summary>
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, double eps) =>
        Operands.NewOutput(x, o => GroupNorm(x, groups, weight, bias, eps, o));

    public static void GroupNorm(Tensor x, int groups, Tensor? weight, Tensor? bias, double eps, Tensor output)
    {
        var context = Operands.SameContext(x, weight, bias, output);
        var dx = x.Descriptor;
        var dout = output.Descriptor;
        ref readonly var dw = ref Operands.Optional(weight, out var sw);
        ref readonly var db = ref Operands.Optional(bias, out var sb);
        NativeStatus.Check(NativeMethods.xdit_group_norm(context.Handle, in dx, groups, in dw, in db, eps, in dout));
    }

    /// <summary>A group norm split over ranks, first half: f32 [N, groups, 2] = (mean, Σ(x − mean)²) of this
    /// part of x per sample and group, accumulated in fp64 (the ranks all-gather and merge them).</summary>
    public static Tensor GroupNormStatistics(Tensor x, int groups) =>
        Operands.NewOutput(x.Context, DType.F32, [x.Size(0), groups, 2], o =>
        {
            var (dx, dout) = (x.Descriptor, o.Descriptor);
            NativeStatus.Check(NativeMethods.xdit_group_norm_stats(Operands.SameContext(x, o).Handle, in dx, groups, in dout));
        });

    /// <summary>The group norm of x with given statistics f32 [N, groups, 2] = (mean, 1/√(var + eps)).</summary>
    public static Tensor GroupNormWithStatistics(Tensor x, int groups, Tensor statistics, Tensor? weight, Tensor? bias) =>
        Operands.NewOutput(x, o =>
        {
            var context = Operands.SameContext(x, statistics, weight, bias, o);
            var (dx, ds, dout) = (x.Descriptor, statistics.Descriptor, o.Descriptor);
            ref readonly var dw = ref Operands.Optional(weight, out var sw);
            ref readonly var db = ref Operands.Optional(bias, out var sb);
            NativeStatus.Check(NativeMethods.xdit_group_norm_apply(context.Handle, in dx, groups, in ds, in dw, in db, in dout));
        });
}
