using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPEncoderLayer</c>, pre-norm: <c>x + self_attn(layer_norm1(x))</c>, then
/// <c>x + mlp(layer_norm2(x))</c>. Both norms are LayerNorms with weight and bias.
/// </summary>
public sealed class ClipEncoderLayer : Module
{
    public ClipEncoderLayer(ClipTextConfig config)
    {
        SelfAttn = Child("self_attn", new ClipAttention(config));
        LayerNorm1 = Child("layer_norm1", new LayerNorm(config.HiddenSize, config.LayerNormEps, affine: true));
        Mlp = Child("mlp", new ClipMlp(config));
        LayerNorm2 = Child("layer_norm2", new LayerNorm(config.HiddenSize, config.LayerNormEps, affine: true));
    }

    public ClipAttention SelfAttn { get; }
    public LayerNorm LayerNorm1 { get; }
    public ClipMlp Mlp { get; }
    public LayerNorm LayerNorm2 { get; }

    /// <summary>x [B, S, hidden]; bias f32 broadcastable to [B, heads, S, S] (<see cref="ClipAttentionBias"/>).</summary>
    public Tensor Forward(Tensor x, Tensor bias)
    {
        using var scope = new TensorScope();
        var h = Elementwise.Add(x, SelfAttn.Forward(LayerNorm1.Forward(x), bias));
        Elementwise.Add(h, Mlp.Forward(LayerNorm2.Forward(h)), h);
        return h.MoveToOuterScope();
    }
}
