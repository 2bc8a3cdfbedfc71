using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>
/// diffusers' <c>Attention</c> with the default processor: q, k, v projections, scaled dot-product
/// attention over heads, output projection (<c>to_out.0</c>). Self-attention when no context is given,
/// cross-attention to <c>context</c> (with an optional key mask over its tokens) otherwise.
/// </summary>
public sealed class MultiHeadAttention : Module
{
    public MultiHeadAttention(long queryDim, int heads, int headDim, long? contextDim = null, bool bias = true, bool outBias = true)
    {
        Heads = heads;
        HeadDim = headDim;
        var inner = (long)heads * headDim;
        ToQ = Child("to_q", new Linear(queryDim, inner, bias));
        ToK = Child("to_k", new Linear(contextDim ?? queryDim, inner, bias));
        ToV = Child("to_v", new Linear(contextDim ?? queryDim, inner, bias));
        ToOut = Child("to_out.0", new Linear(inner, queryDim, outBias));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public Linear ToQ { get; }
    public Linear ToK { get; }
    public Linear ToV { get; }
    public Linear ToOut { get; }

    /// <summary>x [B, S, C] (and context [B, T, Cc], keyMask bool [B, T]) → [B, S, C].</summary>
    public Tensor Forward(Tensor x, Tensor? context = null, Tensor? keyMask = null)
    {
        using var scope = new TensorScope();
        var source = context ?? x;
        var q = SplitHeads(ToQ.Forward(x));
        var k = SplitHeads(ToK.Forward(source));
        var v = SplitHeads(ToV.Forward(source));
        var attended = Ops.Attention.ScaledDotProduct(q, k, v, keyMask);
        return ToOut.Forward(attended.View(x.Size(0), x.Size(1), (long)Heads * HeadDim)).MoveToOuterScope();
    }

    /// <summary>Self-attention of local tokens x [B, s, C] that are part of a longer sequence (a
    /// sequence-parallel shard, a PipeFusion patch): <paramref name="sequence"/> attends them over all of it.</summary>
    public Tensor Forward(Tensor x, ISequenceAttention sequence)
    {
        using var scope = new TensorScope();
        var q = SplitHeads(ToQ.Forward(x));
        var k = SplitHeads(ToK.Forward(x));
        var v = SplitHeads(ToV.Forward(x));
        var attended = sequence.Attend(q, k, v);
        return ToOut.Forward(attended.View(x.Size(0), x.Size(1), (long)Heads * HeadDim)).MoveToOuterScope();
    }

    Tensor SplitHeads(Tensor t) => t.View(t.Size(0), t.Size(1), Heads, HeadDim);
}
