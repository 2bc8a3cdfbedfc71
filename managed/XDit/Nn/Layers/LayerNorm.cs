using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>Layer norm over the last dimension, with or without a learned affine, and the fused adaLN
/// modulation <c>·(1 + scale) + shift</c> of DiT blocks.</summary>
public sealed class LayerNorm : Module
{
    public LayerNorm(long dim, double eps, bool affine, bool bias = true)
    {
        Eps = eps;
        if (!affine) return;
        Weight = Param("weight", dim);
        if (bias) Bias = Param("bias", dim);
    }

    public double Eps { get; }
    public Parameter? Weight { get; }
    public Parameter? Bias { get; }

    public Tensor Forward(Tensor x, Tensor? scale = null, Tensor? shift = null) =>
        Normalization.LayerNorm(x, Weight?.Value, Bias?.Value, Eps, scale, shift);
}
