using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// diffusers' <c>AdaLayerNormZero</c> (<c>norm1</c>, <c>norm1_context</c> of a double-stream block): six
/// vectors from the conditioning (shift, scale and gate of the attention, then of the feed-forward);
/// the first two modulate an affine-free LayerNorm (eps 1e-6) of the input right away, the other four are
/// handed to the block.
/// </summary>
public sealed class AdaLayerNormZero : Module
{
    const double Eps = 1e-6;

    public AdaLayerNormZero(long dim) => Linear = Child("linear", new Linear(dim, 6 * dim));

    public Linear Linear { get; }

    /// <summary>x [B, S, C] normalised and modulated, and the block's four remaining vectors, each
    /// [B, 1, C]. Every tensor returned belongs to the caller's scope.</summary>
    /// <param name="activatedConditioning">SiLU of the conditioning embedding [B, C]: every adaptive norm
    /// of diffusers applies the same SiLU to the same embedding, so the model computes it once.</param>
    public (Tensor Normed, Tensor AttentionGate, Tensor MlpShift, Tensor MlpScale, Tensor MlpGate) Forward(
        Tensor x, Tensor activatedConditioning)
    {
        var v = AdaptiveModulation.Vectors(Linear, activatedConditioning, 6);
        var normed = Normalization.LayerNorm(x, null, null, Eps, scale: v[1], shift: v[0]);
        return (normed, v[2], v[3], v[4], v[5]);
    }
}
