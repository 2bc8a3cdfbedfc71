using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Tensors;

namespace XDit.Models.T5;

/// <summary>
/// transformers' <c>T5Attention</c> in the encoder: bias-free q, k, v, o projections and attention
/// <em>without</em> the 1/√d scaling (T5 folds it into the initialisation of q), plus an additive
/// relative-position bias. Only block 0 owns the bias table (<c>relative_attention_bias</c>); the bias
/// it yields is passed to every block.
/// </summary>
public sealed class T5Attention : Module
{
    readonly int _numBuckets;
    readonly int _maxDistance;

    public T5Attention(T5Config config, bool hasRelativeAttentionBias)
    {
        Heads = config.NumHeads;
        HeadDim = config.DKv;
        _numBuckets = config.RelativeAttentionNumBuckets;
        _maxDistance = config.RelativeAttentionMaxDistance;
        Q = Child("q", new Linear(config.DModel, config.InnerDim, bias: false));
        K = Child("k", new Linear(config.DModel, config.InnerDim, bias: false));
        V = Child("v", new Linear(config.DModel, config.InnerDim, bias: false));
        O = Child("o", new Linear(config.InnerDim, config.DModel, bias: false));
        if (hasRelativeAttentionBias)
            RelativeAttentionBias = Child("relative_attention_bias", new Embedding(_numBuckets, Heads));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public Linear Q { get; }
    public Linear K { get; }
    public Linear V { get; }
    public Linear O { get; }
    /// <summary>The table [buckets, heads]; block 0 only.</summary>
    public Embedding? RelativeAttentionBias { get; }

    /// <summary>
    /// transformers' <c>compute_bias(length, length)</c>: f32 [1, heads, length, length] with entry
    /// (h, q, k) = table[bucket(k − q), h], the buckets bidirectional
    /// (<see cref="T5RelativePositionBuckets"/>). Built on the host one head at a time (the table is a
    /// few hundred numbers) and kept in f32 whatever the model's dtype: the attention adds it to fp32
    /// scores either way. It is materialised once per forward and shared by every block (T5-XXL's 64 heads
    /// at 512 tokens: 64 MiB).
    /// </summary>
    public Tensor PositionBias(int length)
    {
        var table = RelativeAttentionBias?.Weight.Value
            ?? throw new InvalidOperationException("only the attention of block 0 has a relative_attention_bias table");
        float[] weights;
        using (var f32 = table.To(DType.F32)) weights = f32.ToArray<float>();
        var buckets = T5RelativePositionBuckets.Compute(length, length, bidirectional: true, _numBuckets, _maxDistance);
        var bias = Tensor.Empty(table.Context, DType.F32, 1, Heads, length, length);
        try
        {
            var plane = new float[buckets.Length];
            for (int h = 0; h < Heads; h++)
            {
                for (int i = 0; i < buckets.Length; i++) plane[i] = weights[buckets[i] * Heads + h];
                using var head = bias.Narrow(1, h, 1);
                head.CopyFrom<float>(plane);
            }
            return bias;
        }
        catch
        {
            bias.Dispose();
            throw;
        }
    }

    /// <summary>x [B, S, d_model] → [B, S, d_model]. positionBias: [1, heads, S, S] from block 0's
    /// <see cref="PositionBias"/>; keyMask: bool [B, S], true for real tokens, or null.</summary>
    public Tensor Forward(Tensor x, Tensor positionBias, Tensor? keyMask)
    {
        using var scope = new TensorScope();
        var q = SplitHeads(Q.Forward(x));
        var k = SplitHeads(K.Forward(x));
        var v = SplitHeads(V.Forward(x));
        var attended = Ops.Attention.ScaledDotProduct(q, k, v, keyMask, positionBias, scale: 1);
        return O.Forward(attended.View(x.Size(0), x.Size(1), (long)Heads * HeadDim)).MoveToOuterScope();
    }

    Tensor SplitHeads(Tensor t) => t.View(t.Size(0), t.Size(1), Heads, HeadDim);
}
