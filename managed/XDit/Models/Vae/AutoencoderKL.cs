using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>
/// diffusers' <c>AutoencoderKL</c>: <see cref="Decode"/> turns latents into images ([−1, 1]),
/// <see cref="Encode"/> images into the posterior's mean and log-variance. Like diffusers' own methods
/// these take latents as the model sees them: pipelines divide by <c>scaling_factor</c> (and add
/// <c>shift_factor</c>) first — <see cref="DecodeScaled"/> does that. A non-finite result is an error,
/// never an image. Large images can go tile by tile (<see cref="Tiling"/>, <see cref="TiledDecode"/>,
/// <see cref="TiledEncode"/>) to bound memory.
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

    /// <summary>diffusers' <c>enable_tiling()</c>: when set, <see cref="Decode"/> and <see cref="Encode"/> (and
    /// so <see cref="DecodeScaled"/> and the pipelines) are <see cref="TiledDecode"/> and <see cref="TiledEncode"/>,
    /// which, like diffusers, tile only an input higher or wider than one tile (tile / f latents, tile
    /// pixels) and pass a smaller one whole. Worth it for large images, whose one-piece activations (and
    /// mid-block attention over every latent pixel) outgrow the device. null (the default, as in diffusers)
    /// keeps the exact one-piece pass; an invalid setting is rejected here.</summary>
    public VaeTiling? Tiling
    {
        get => _tiling;
        set
        {
            value?.Validate(Config.ScaleFactor);
            _tiling = value;
        }
    }

    VaeTiling? _tiling;

    /// <summary>latents [N, latent, h, w] → image [N, out, h·f, w·f]; tile by tile when <see cref="Tiling"/> is set.</summary>
    public Tensor Decode(Tensor latents) => Tiling is null ? DecodeWhole(latents) : TiledDecode(latents, Tiling);

    /// <summary>
    /// <see cref="Decode"/> as diffusers' <c>decode</c> does it after <c>enable_tiling()</c>: a latent no larger
    /// than one latent tile (tile / f) in both directions decodes in one piece, exactly; a larger one goes
    /// through <c>tiled_decode</c>, whose tiles, blend weights and kept rows this reproduces, so the image
    /// is close to the one-piece decode, not equal (see <see cref="VaeTiling"/>).
    /// </summary>
    /// <param name="tiling">The tiles; default <see cref="Tiling"/>, else <see cref="VaeTiling.For"/> the config.</param>
    public Tensor TiledDecode(Tensor latents, VaeTiling? tiling = null)
    {
        var plan = (tiling ?? Tiling ?? VaeTiling.For(Config)).DecodePlan(Config.ScaleFactor);
        RequireSpatial(latents, "latents");
        if (latents.Size(2) <= plan.InputTile && latents.Size(3) <= plan.InputTile) return DecodeWhole(latents);
        using var scope = new TensorScope();
        var image = TiledPass.Run(latents, plan, DecodeUnchecked);
        RequireFinite(image, "the decoded image");
        return image.MoveToOuterScope();
    }

    Tensor DecodeWhole(Tensor latents)
    {
        using var scope = new TensorScope();
        var image = DecodeUnchecked(latents);
        RequireFinite(image, "the decoded image");
        return image.MoveToOuterScope();
    }

    Tensor DecodeUnchecked(Tensor latents)
    {
        using var scope = new TensorScope();
        var z = PostQuantConv?.Forward(latents) ?? latents;
        return Decoder.Forward(z).MoveToOuterScope();
    }

    /// <summary>What a pipeline decodes: <c>decode(latents / scaling_factor + shift_factor)</c>; split by rows
    /// over <paramref name="group"/> when one is given (<see cref="DecodeInParallel"/>).</summary>
    public Tensor DecodeScaled(Tensor latents, ICommunicator? group = null)
    {
        using var scaled = Elementwise.Affine(latents, 1 / Config.ScalingFactor, Config.ShiftFactor ?? 0);
        return group is null ? Decode(scaled) : DecodeInParallel(scaled, group);
    }

    /// <summary>
    /// The parallel VAE decode (xDiT's DistVAE): every rank of <paramref name="group"/> calls it with the same
    /// latents, decodes its band of rows (<see cref="RowShards"/>: halo rows for the convolutions, merged
    /// group-norm statistics, gathered keys and values in the mid-block attention), and gets the whole
    /// image — equal to the one-rank decode, with each rank's activations a 1/ranks share of the map's.
    /// </summary>
    public Tensor DecodeInParallel(Tensor latents, ICommunicator group)
    {
        RequireSpatial(latents, "latents");
        using var scope = new TensorScope();
        var rows = new RowShards(group, latents.Size(2));
        var local = rows.Slice(latents);
        var z = PostQuantConv?.Forward(local) ?? local;
        var (band, bandRows) = Decoder.Forward(z, rows);
        var image = bandRows!.Gather(band);
        RequireFinite(image, "the decoded image");
        return image.MoveToOuterScope();
    }

    /// <summary>image [N, in, H, W] in [−1, 1] → (mean, log-variance clamped to [−30, 20]); tile by tile
    /// when <see cref="Tiling"/> is set.</summary>
    public (Tensor Mean, Tensor LogVariance) Encode(Tensor image) => Tiling is null ? EncodeWhole(image) : TiledEncode(image, Tiling);

    /// <summary>
    /// <see cref="Encode"/> as diffusers' <c>encode</c> does it after <c>enable_tiling()</c>: an image no larger
    /// than one tile in both directions encodes in one piece, exactly; a larger one goes through
    /// <c>tiled_encode</c> (tiles of the image, moments blended in latent space, then split and clamped).
    /// Its height and width must then be multiples of the scale factor f, so that tiles start on latent rows.
    /// </summary>
    /// <param name="tiling">The tiles; default <see cref="Tiling"/>, else <see cref="VaeTiling.For"/> the config.</param>
    public (Tensor Mean, Tensor LogVariance) TiledEncode(Tensor image, VaeTiling? tiling = null)
    {
        var plan = (tiling ?? Tiling ?? VaeTiling.For(Config)).EncodePlan(Config.ScaleFactor);
        RequireSpatial(image, "image");
        long height = image.Size(2), width = image.Size(3), f = Config.ScaleFactor;
        if (height <= plan.InputTile && width <= plan.InputTile) return EncodeWhole(image);
        if (height % f != 0 || width % f != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"image {image.ShapeString}: a tiled encode needs a height and width that are multiples of the scale factor {f}");
        using var scope = new TensorScope();
        return Posterior(TiledPass.Run(image, plan, EncodeMoments));
    }

    (Tensor Mean, Tensor LogVariance) EncodeWhole(Tensor image)
    {
        using var scope = new TensorScope();
        return Posterior(EncodeMoments(image));
    }

    Tensor EncodeMoments(Tensor image)
    {
        using var scope = new TensorScope();
        var moments = Encoder.Forward(image);
        return (QuantConv?.Forward(moments) ?? moments).MoveToOuterScope();
    }

    /// <summary>diffusers' <c>DiagonalGaussianDistribution</c>: moments → (mean, clamped log-variance), both
    /// handed out of the caller's scope.</summary>
    (Tensor Mean, Tensor LogVariance) Posterior(Tensor moments)
    {
        var latent = Config.LatentChannels;
        var mean = moments.Narrow(1, 0, latent).Contiguous();
        var logVariance = Elementwise.Clamp(moments.Narrow(1, latent, latent), -30, 20);
        return (mean.MoveToOuterScope(), logVariance.MoveToOuterScope());
    }

    static void RequireSpatial(Tensor t, string what)
    {
        if (t.Rank != 4)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what} must be [N, C, H, W], got {t}");
    }

    static void RequireFinite(Tensor t, string what)
    {
        var sum = Elementwise.AbsSum(t);
        if (!double.IsFinite(sum))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what} {t.ShapeString} has non-finite values (NaN or infinity)");
    }
}
