using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.T5;

/// <summary>
/// One encoder block (transformers' <c>T5Block</c>): pre-norm self-attention (<c>layer.0</c>) and pre-norm
/// feed-forward (<c>layer.1</c>), each added back to the residual stream. The norms are T5LayerNorm:
/// RMS norm with a weight, no mean subtraction, no bias.
/// </summary>
public sealed class T5Block : Module
{
    public T5Block(T5Config config, bool hasRelativeAttentionBias)
    {
        SelfAttention = Child("layer.0.SelfAttention", new T5Attention(config, hasRelativeAttentionBias));
        AttentionNorm = Child("layer.0.layer_norm", new RmsNorm(config.DModel, config.LayerNormEpsilon));
        FeedForward = Child("layer.1.DenseReluDense", new T5FeedForward(config));
        FeedForwardNorm = Child("layer.1.layer_norm", new RmsNorm(config.DModel, config.LayerNormEpsilon));
    }

    public T5Attention SelfAttention { get; }
    public RmsNorm AttentionNorm { get; }
    public T5FeedForward FeedForward { get; }
    public RmsNorm FeedForwardNorm { get; }

    /// <summary>x [B, S, d_model]; positionBias f32 [1, heads, S, S]; keyMask bool [B, S] or null.</summary>
    public Tensor Forward(Tensor x, Tensor positionBias, Tensor? keyMask)
    {
        using var scope = new TensorScope();
        var attended = SelfAttention.Forward(AttentionNorm.Forward(x), positionBias, keyMask);
        var h = Elementwise.Add(x, attended);
        var fed = FeedForward.Forward(FeedForwardNorm.Forward(h));
        Elementwise.Add(h, fed, h);
        return h.MoveToOuterScope();
    }
}
