using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Scaled dot-product attention (blocked, online softmax, memory O(S·D)) and the merge of
/// partial attentions that ring attention is built from.</summary>
public static class Attention
{
    /// <summary>
    /// softmax(q·kᵀ·scale + bias, masked)·v for q [B, Sq, H, D], k [B, Sk, H, D], v [B, Sk, H, Dv] →
    /// [B, Sq, H, Dv]. keyMask: bool [B, Sk], true = attend. bias: broadcastable to [B, H, Sq, Sk].
    /// scale defaults to 1/√D. With <paramref name="lse"/> (f32 [B, H, Sq]) the log-sum-exp of each
    /// query's scores is written too.
    /// </summary>
    public static Tensor ScaledDotProduct(Tensor q, Tensor k, Tensor v, Tensor? keyMask = null, Tensor? bias = null,
        double? scale = null, Tensor? lse = null)
    {
        long[] shape = [q.Size(0), q.Size(1), q.Size(2), v.Size(3)];
        return Operands.NewOutput(q.Context, q.DType, shape, o => ScaledDotProduct(q, k, v, keyMask, bias, scale, o, lse));
    }

    public static void ScaledDotProduct(Tensor q, Tensor k, Tensor v, Tensor? keyMask, Tensor? bias, double? scale,
        Tensor output, Tensor? lse)
    {
        var context = Operands.SameContext(q, k, v, keyMask, bias, output, lse);
        if (q.Rank != 4 || k.Rank != 4)
            throw new XDitException(XditStatus.InvalidArgument, $"attention needs q and k of rank 4 ([B, S, H, D]); got {q} and {k}");
        // Two products per head: q·kᵀ (Sq·Sk·D) and p·v (Sq·Sk·Dv).
        if (v.Rank == 4) FlopCounter.Add(2.0 * q.Size(0) * q.Size(2) * q.Size(1) * k.Size(1) * (q.Size(3) + v.Size(3)));
        using var expandedBias = bias is null ? null
            : Operands.BroadcastTo(bias, [q.Size(0), q.Size(2), q.Size(1), k.Size(1)], "bias");
        var (dq, dk, dv, dout) = (q.Descriptor, k.Descriptor, v.Descriptor, output.Descriptor);
        ref readonly var dmask = ref Operands.Optional(keyMask, out var sm);
        ref readonly var dbias = ref Operands.Optional(expandedBias, out var sb);
        ref readonly var dlse = ref Operands.Optional(lse, out var sl);
        NativeStatus.Check(NativeMethods.xdit_attention(context.Handle, in dq, in dk, in dv, in dmask, in dbias,
            scale ?? 1.0 / Math.Sqrt(q.Size(3)), in dout, in dlse));
    }

    /// <summary>Combines two attentions over disjoint key sets (out [B, S, H, D], lse f32 [B, H, S]) into
    /// the attention over their union, in fp32. The result may be written into the first pair.</summary>
    public static void Merge(Tensor outA, Tensor lseA, Tensor outB, Tensor lseB, Tensor output, Tensor lse)
    {
        var context = Operands.SameContext(outA, lseA, outB, lseB, output, lse);
        var (doa, dla, dob, dlb, dout, dlse) = (outA.Descriptor, lseA.Descriptor, outB.Descriptor, lseB.Descriptor,
            output.Descriptor, lse.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_attention_merge(context.Handle, in doa, in dla, in dob, in dlb, in dout, in dlse));
    }
}
