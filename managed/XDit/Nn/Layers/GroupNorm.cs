using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>Group norm of [N, C, ...] with a learned per-channel affine.</summary>
public sealed class GroupNorm : Module
{
    public GroupNorm(int groups, long channels, double eps)
    {
        Groups = groups;
        Eps = eps;
        Weight = Param("weight", channels);
        Bias = Param("bias", channels);
    }

    public int Groups { get; }
    public double Eps { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }

    public Tensor Forward(Tensor x) => Normalization.GroupNorm(x, Groups, Weight.Value, Bias.Value, Eps);
}
