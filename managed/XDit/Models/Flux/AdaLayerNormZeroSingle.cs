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
    /// <see cref="Nn.Layers.AdaLayerNormZero.Modulation"/>).</param>
    public (Tensor Normed, Tensor Gate) Forward(Tensor x, Tensor activatedConditioning)
    {
        // linear(SiLU(temb)).chunk(3): [B, 1, C] views of the projection (which they keep alive) that broadcast over the tokens.
        using var projected = Linear.Forward(activatedConditioning);
        using var rows = projected.View(projected.Size(0), 3, projected.Size(-1) / 3);
        using var shift = rows.Narrow(1, 0, 1);
        using var scale = rows.Narrow(1, 1, 1);
        return (Normalization.LayerNorm(x, null, null, Eps, scale, shift), rows.Narrow(1, 2, 1));
    }
}
