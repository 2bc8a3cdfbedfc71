using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>diffusers' <c>ResnetBlock2D</c> as the VAE uses it: GroupNorm, SiLU, 3×3 conv, twice, plus the
/// input (through a 1×1 <c>conv_shortcut</c> when the channel count changes).</summary>
public sealed class ResnetBlock2D : Module
{
    public ResnetBlock2D(int inChannels, int outChannels, int groups, double eps = 1e-6)
    {
        Norm1 = Child("norm1", new GroupNorm(groups, inChannels, eps));
        Conv1 = Child("conv1", new Conv2d(inChannels, outChannels, 3, 1, 1));
        Norm2 = Child("norm2", new GroupNorm(groups, outChannels, eps));
        Conv2 = Child("conv2", new Conv2d(outChannels, outChannels, 3, 1, 1));
        if (inChannels != outChannels) Shortcut = Child("conv_shortcut", new Conv2d(inChannels, outChannels, 1));
    }

    public GroupNorm Norm1 { get; }
    public Conv2d Conv1 { get; }
    public GroupNorm Norm2 { get; }
    public Conv2d Conv2 { get; }
    public Conv2d? Shortcut { get; }

    /// <summary>With <paramref name="rows"/>, x is this rank's band of rows of the whole map.</summary>
    public Tensor Forward(Tensor x, RowShards? rows = null)
    {
        using var scope = new TensorScope();
        Tensor Norm(GroupNorm norm, Tensor t) => rows?.GroupNorm(norm, t) ?? norm.Forward(t);
        Tensor Conv(Conv2d conv, Tensor t) => rows?.Conv(conv, t) ?? conv.Forward(t);
        var h = Conv(Conv1, Elementwise.Unary(UnaryOp.Silu, Norm(Norm1, x)));
        h = Conv(Conv2, Elementwise.Unary(UnaryOp.Silu, Norm(Norm2, h)));
        var residual = Shortcut?.Forward(x) ?? x;
        return Elementwise.Add(residual, h).MoveToOuterScope();
    }
}
