using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>diffusers' <c>AdaLayerNormZeroSingle</c> (<c>norm</c> of a single-stream block): shift, scale
/// and gate from the conditioning; an affine-free LayerNorm (eps 1e-6) modulated by the first two.</summary>
public sealed class AdaLayerNormZeroSingle : Module
{
    const double Eps = 1e-6;

    public AdaLayerNormZeroSingle(long dim) => Linear = Child("linear", new Linear(dim, 3 * dim));

    public Linear Linear { get; }

    /// <summary>x [B, S, C] normalised and modulated, and the gate [B, 1, C] of the block's residual;
    /// both belong to the caller's scope.</summary>
    /// <param name="activatedConditioning">SiLU of the conditioning embedding [B, C] (see
    /// <see cref="AdaLayerNormZero.Forward"/>).</param>
    public (Tensor Normed, Tensor Gate) Forward(Tensor x, Tensor activatedConditioning)
    {
        var v = AdaptiveModulation.Vectors(Linear, activatedConditioning, 3);
        return (Normalization.LayerNorm(x, null, null, Eps, scale: v[1], shift: v[0]), v[2]);
    }
}
