using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>diffusers' <c>AdaLayerNormContinuous</c> as Flux's <c>norm_out</c> uses it: an affine-free
/// LayerNorm (eps 1e-6) modulated by scale and shift from the conditioning. Unlike the zero-norms, the
/// projection yields the scale first.</summary>
public sealed class AdaLayerNormContinuous : Module
{
    const double Eps = 1e-6;

    public AdaLayerNormContinuous(long dim, long conditioningDim) => Linear = Child("linear", new Linear(conditioningDim, 2 * dim));

    public Linear Linear { get; }

    /// <summary>x [B, S, C] → [B, S, C].</summary>
    /// <param name="activatedConditioning">SiLU of the conditioning embedding [B, C] (see
    /// <see cref="AdaLayerNormZero.Forward"/>).</param>
    public Tensor Forward(Tensor x, Tensor activatedConditioning)
    {
        using var scope = new TensorScope();
        var v = AdaptiveModulation.Vectors(Linear, activatedConditioning, 2);
        return Normalization.LayerNorm(x, null, null, Eps, scale: v[0], shift: v[1]).MoveToOuterScope();
    }
}
