using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>diffusers' VAE <c>Encoder</c>: conv_in, down blocks (layers_per_block resnets, then a stride-2
/// conv with PyTorch's asymmetric (0, 1, 0, 1) padding, except in the last), a mid block, GroupNorm,
/// SiLU, and conv_out to the mean and log-variance channels.</summary>
public sealed class VaeEncoder : Module
{
    readonly List<(ResnetBlock2D[] Resnets, Conv2d? Downsample)> _downBlocks = new();

    public VaeEncoder(AutoencoderKLConfig config)
    {
        var channels = config.BlockOutChannels;
        var groups = config.NormNumGroups;
        ConvIn = Child("conv_in", new Conv2d(config.InChannels, channels[0], 3, 1, 1));
        var previous = channels[0];
        for (int i = 0; i < channels.Count; i++)
        {
            var output = channels[i];
            var resnets = new ResnetBlock2D[config.LayersPerBlock];
            for (int j = 0; j < resnets.Length; j++)
                resnets[j] = Child($"down_blocks.{i}.resnets.{j}", new ResnetBlock2D(j == 0 ? previous : output, output, groups));
            var downsample = i < channels.Count - 1 ? Child($"down_blocks.{i}.downsamplers.0.conv", new Conv2d(output, output, 3, 2, 0)) : null;
            _downBlocks.Add((resnets, downsample));
            previous = output;
        }
        var top = channels[^1];
        MidResnet0 = Child("mid_block.resnets.0", new ResnetBlock2D(top, top, groups));
        if (config.MidBlockAddAttention) MidAttention = Child("mid_block.attentions.0", new SpatialAttention(top, groups));
        MidResnet1 = Child("mid_block.resnets.1", new ResnetBlock2D(top, top, groups));
        NormOut = Child("conv_norm_out", new GroupNorm(groups, top, 1e-6));
        ConvOut = Child("conv_out", new Conv2d(top, 2L * config.LatentChannels, 3, 1, 1));
    }

    public Conv2d ConvIn { get; }
    public ResnetBlock2D MidResnet0 { get; }
    public SpatialAttention? MidAttention { get; }
    public ResnetBlock2D MidResnet1 { get; }
    public GroupNorm NormOut { get; }
    public Conv2d ConvOut { get; }

    /// <summary>image [N, 3, H, W] in [−1, 1] → moments [N, 2·latent, H/f, W/f].</summary>
    public Tensor Forward(Tensor image)
    {
        using var scope = new TensorScope();
        var h = ConvIn.Forward(image);
        foreach (var (resnets, downsample) in _downBlocks)
        {
            foreach (var resnet in resnets) h = resnet.Forward(h);
            if (downsample is not null) h = downsample.Forward(PadRightBottom(h));
        }
        h = MidResnet0.Forward(h);
        if (MidAttention is not null) h = MidAttention.Forward(h);
        h = MidResnet1.Forward(h);
        h = Elementwise.Unary(UnaryOp.Silu, NormOut.Forward(h));
        return ConvOut.Forward(h).MoveToOuterScope();
    }

    /// <summary>One zero row below and one zero column right (diffusers pads (0, 1, 0, 1) before its stride-2 conv).</summary>
    static Tensor PadRightBottom(Tensor h)
    {
        long n = h.Size(0), c = h.Size(1), height = h.Size(2), width = h.Size(3);
        var padded = Tensor.Zeros(h.Context, h.DType, n, c, height + 1, width + 1);
        using var inside = padded.Narrow(2, 0, height);
        using var target = inside.Narrow(3, 0, width);
        Elementwise.Copy(h, target);
        return padded;
    }
}
