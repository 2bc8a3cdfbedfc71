using XDit.Nn;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>
/// diffusers' <c>AdaLayerNormContinuous</c> as SD3 and Flux configure it (no affine, eps 1e-6): a
/// parameter-free layer norm modulated by <c>·(1 + scale) + shift</c>, both projected from the
/// conditioning by <c>linear</c>. Unlike the adaLN-zero norms, the projection yields the scale first.
/// The models' <c>norm_out</c>, and SD3's text-stream <c>norm1_context</c> of its last, context_pre_only block.
/// </summary>
public sealed class AdaLayerNormContinuous : Module
{
    const double Eps = 1e-6;

    public AdaLayerNormContinuous(long dim, long conditioningDim)
    {
        Linear = Child("linear", new Linear(conditioningDim, 2 * dim));
    }

    public Linear Linear { get; }

    /// <summary>x [B, S, C] modulated by SiLU(conditioning) [B, Cc] → [B, S, C].</summary>
    /// <param name="activatedConditioning">The conditioning after SiLU (shared with every block).</param>
    public Tensor Forward(Tensor x, Tensor activatedConditioning)
    {
        using var scope = new TensorScope();
        var modulation = Linear.Forward(activatedConditioning).Unsqueeze(1); // [B, 1, 2C]: scale | shift
        var (scale, shift) = (modulation.Narrow(2, 0, x.Size(2)), modulation.Narrow(2, x.Size(2), x.Size(2)));
        return Normalization.LayerNorm(x, null, null, Eps, scale, shift).MoveToOuterScope();
    }
}
