using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>RMS norm over the last dimension (T5LayerNorm, q/k norms).</summary>
public sealed class RmsNorm : Module
{
    public RmsNorm(long dim, double eps, bool weight = true)
    {
        Eps = eps;
        if (weight) Weight = Param("weight", dim);
    }

    public double Eps { get; }
    public Parameter? Weight { get; }

    public Tensor Forward(Tensor x) => Normalization.RmsNorm(x, Weight?.Value, Eps);
}
