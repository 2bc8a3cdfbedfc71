using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>diffusers' VAE <c>Decoder</c>: conv_in, a mid block (resnet, attention, resnet), up blocks
/// from the widest channels down (layers_per_block + 1 resnets, then nearest 2× upsampling and a conv,
/// except in the last), GroupNorm, SiLU, conv_out.</summary>
public sealed class VaeDecoder : Module
{
    readonly List<(ResnetBlock2D[] Resnets, Conv2d? Upsample)> _upBlocks = new();

    public VaeDecoder(AutoencoderKLConfig config)
    {
        var channels = config.BlockOutChannels;
        var groups = config.NormNumGroups;
        var top = channels[^1];
        ConvIn = Child("conv_in", new Conv2d(config.LatentChannels, top, 3, 1, 1));
        MidResnet0 = Child("mid_block.resnets.0", new ResnetBlock2D(top, top, groups));
        if (config.MidBlockAddAttention) MidAttention = Child("mid_block.attentions.0", new SpatialAttention(top, groups));
        MidResnet1 = Child("mid_block.resnets.1", new ResnetBlock2D(top, top, groups));
        var previous = top;
        for (int i = 0; i < channels.Count; i++)
        {
            var output = channels[channels.Count - 1 - i];
            var resnets = new ResnetBlock2D[config.LayersPerBlock + 1];
            for (int j = 0; j < resnets.Length; j++)
                resnets[j] = Child($"up_blocks.{i}.resnets.{j}", new ResnetBlock2D(j == 0 ? previous : output, output, groups));
            var upsample = i < channels.Count - 1 ? Child($"up_blocks.{i}.upsamplers.0.conv", new Conv2d(output, output, 3, 1, 1)) : null;
            _upBlocks.Add((resnets, upsample));
            previous = output;
        }
        NormOut = Child("conv_norm_out", new GroupNorm(groups, channels[0], 1e-6));
        ConvOut = Child("conv_out", new Conv2d(channels[0], config.OutChannels, 3, 1, 1));
    }

    public Conv2d ConvIn { get; }
    public ResnetBlock2D MidResnet0 { get; }
    public SpatialAttention? MidAttention { get; }
    public ResnetBlock2D MidResnet1 { get; }
    public GroupNorm NormOut { get; }
    public Conv2d ConvOut { get; }

    public Tensor Forward(Tensor z) => Forward(z, null).Image;

    /// <summary>With <paramref name="rows"/>, z is this rank's band of latent rows and the result its band
    /// of image rows, with the split of the image (<see cref="RowShards.Scaled"/> by every upsampling).</summary>
    public (Tensor Image, RowShards? Rows) Forward(Tensor z, RowShards? rows)
    {
        using var scope = new TensorScope();
        Tensor Conv(Conv2d conv, Tensor x) => rows?.Conv(conv, x) ?? conv.Forward(x);
        var h = Conv(ConvIn, z);
        h = MidResnet0.Forward(h, rows);
        if (MidAttention is not null) h = MidAttention.Forward(h, rows);
        h = MidResnet1.Forward(h, rows);
        foreach (var (resnets, upsample) in _upBlocks)
        {
            foreach (var resnet in resnets) h = resnet.Forward(h, rows);
            if (upsample is null) continue;
            rows = rows?.Scaled(2);
            h = Conv(upsample, Convolution.UpsampleNearest(h, 2));
        }
        h = Elementwise.Unary(UnaryOp.Silu, rows?.GroupNorm(NormOut, h) ?? NormOut.Forward(h));
        return (Conv(ConvOut, h).MoveToOuterScope(), rows);
    }
}
