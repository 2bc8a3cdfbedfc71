using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c>: <see cref="Decode"/> turns latents into images ([−1, 1]),
/// <see cref="Encode"/> images into the posterior's mean and log-variance. Like diffusers' own methods
/// these take latents as the model sees them: pipelines divide by <c>scaling_factor</c> (and add
/// <c>shift_factor</c>) first — <see cref="DecodeScaled"/> does that. A non-finite result is an error,
/// never an image.
/// </summary>
public sealed class AutoencoderKL : Module
{
    public AutoencoderKL(AutoencoderKLConfig config)
    {
        Config = config;
        Encoder = Child("encoder", new VaeEncoder(config));
        Decoder = Child("decoder", new VaeDecoder(config));
        if (config.UseQuantConv) QuantConv = Child("quant_conv", new Conv2d(2L * config.LatentChannels, 2L * config.LatentChannels, 1));
        if (config.UsePostQuantConv) PostQuantConv = Child("post_quant_conv", new Conv2d(config.LatentChannels, config.LatentChannels, 1));
    }

    public AutoencoderKLConfig Config { get; }
    public VaeEncoder Encoder { get; }
    public VaeDecoder Decoder { get; }
    public Conv2d? QuantConv { get; }
    public Conv2d? PostQuantConv { get; }

    /// <summary>latents [N, latent, h, w] → image [N, out, h·f, w·f].</summary>
    public Tensor Decode(Tensor latents)
    {
        using var scope = new TensorScope();
        var z = PostQuantConv?.Forward(latents) ?? latents;
        var image = Decoder.Forward(z);
        RequireFinite(image, "the decoded image");
        return image.MoveToOuterScope();
    }

    /// <summary>What a pipeline decodes: <c>decode(latents / scaling_factor + shift_factor)</c>.</summary>
    public Tensor DecodeScaled(Tensor latents)
    {
        using var scaled = Elementwise.Affine(latents, 1 / Config.ScalingFactor, Config.ShiftFactor ?? 0);
        return Decode(scaled);
    }

    /// <summary>image [N, in, H, W] in [−1, 1] → (mean, log-variance clamped to [−30, 20]).</summary>
    public (Tensor Mean, Tensor LogVariance) Encode(Tensor image)
    {
        using var scope = new TensorScope();
        var moments = Encoder.Forward(image);
        if (QuantConv is not null) moments = QuantConv.Forward(moments);
        var latent = Config.LatentChannels;
        var mean = moments.Narrow(1, 0, latent).Contiguous();
        var logVariance = Elementwise.Clamp(moments.Narrow(1, latent, latent), -30, 20);
        return (mean.MoveToOuterScope(), logVariance.MoveToOuterScope());
    }

    static void RequireFinite(Tensor t, string what)
    {
        var sum = Elementwise.AbsSum(t);
        if (!double.IsFinite(sum))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what} {t.ShapeString} has non-finite values (NaN or infinity)");
    }
}
