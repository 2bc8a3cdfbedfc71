using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>2-D convolution with PyTorch's weight layout [out, in, kh, kw] and symmetric zero padding.</summary>
public sealed class Conv2d : Module
{
    public Conv2d(long inChannels, long outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true)
    {
        Stride = stride;
        Padding = padding;
        Weight = Param("weight", outChannels, inChannels, kernel, kernel);
        Bias = bias ? Param("bias", outChannels) : null;
    }

    public int Stride { get; }
    public int Padding { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Tensor Forward(Tensor x) => Convolution.Conv2d(x, Weight.Value, Bias?.Value, Stride, Padding);
}
