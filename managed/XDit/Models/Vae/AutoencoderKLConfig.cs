using XDit.Weights;
using System.Text.Json;

namespace XDit.Models.Vae;

/// <summary>The configuration of diffusers' <c>AutoencoderKL</c> with its defaults for missing fields
/// (SD/PixArt style with quant convs; SD3/Flux style without, 16 latent channels, a shift factor).</summary>
public sealed record AutoencoderKLConfig
{
    public int InChannels { get; init; } = 3;
    public int OutChannels { get; init; } = 3;
    public int LatentChannels { get; init; } = 4;
    public IReadOnlyList<int> BlockOutChannels { get; init; } = [64];
    public int LayersPerBlock { get; init; } = 1;
    public int NormNumGroups { get; init; } = 32;
    public bool MidBlockAddAttention { get; init; } = true;
    public bool UseQuantConv { get; init; } = true;
    public bool UsePostQuantConv { get; init; } = true;
    public double ScalingFactor { get; init; } = 0.18215;
    public double? ShiftFactor { get; init; }
    /// <summary>The VAE must decode in fp32 even when the transformer runs in bf16/f16.</summary>
    public bool ForceUpcast { get; init; } = true;
    /// <summary>The image size the VAE was trained on (diffusers' <c>sample_size</c>, the first entry when it
    /// is a list): the default tile of <see cref="AutoencoderKL.TiledDecode"/> and <see cref="AutoencoderKL.TiledEncode"/>.</summary>
    public int SampleSize { get; init; } = 32;

    /// <summary>Spatial downsampling factor from image to latent.</summary>
    public int ScaleFactor => 1 << (BlockOutChannels.Count - 1);

    public static AutoencoderKLConfig FromJson(JsonElement json, string source = "config.json")
    {
        var c = JsonConfig.Parse(json.GetRawText(), source);
        // sample_size is one number or [height, width]; diffusers tiles with the first.
        var sampleSize = c.Root.TryGetProperty("sample_size", out var size) && size.ValueKind == JsonValueKind.Array
            ? c.IntArray("sample_size")!.FirstOrDefault(32) : c.Int("sample_size", 32);
        foreach (var kind in new[] { "down_block_types", "up_block_types" })
            foreach (var t in c.StringArray(kind) ?? [])
                if (t is not ("DownEncoderBlock2D" or "UpDecoderBlock2D"))
                    throw new XDitException(Native.XditStatus.Unsupported, $"{source}: {kind} entry \"{t}\" is not supported");
        if (c.String("act_fn", "silu") is var act && act != "silu")
            throw new XDitException(Native.XditStatus.Unsupported, $"{source}: act_fn \"{act}\" is not supported (silu is)");
        var config = new AutoencoderKLConfig
        {
            InChannels = c.Int("in_channels", 3),
            OutChannels = c.Int("out_channels", 3),
            LatentChannels = c.Int("latent_channels", 4),
            BlockOutChannels = c.IntArray("block_out_channels", [64])!,
            LayersPerBlock = c.Int("layers_per_block", 1),
            NormNumGroups = c.Int("norm_num_groups", 32),
            MidBlockAddAttention = c.Bool("mid_block_add_attention", true),
            UseQuantConv = c.Bool("use_quant_conv", true),
            UsePostQuantConv = c.Bool("use_post_quant_conv", true),
            ScalingFactor = c.Double("scaling_factor", 0.18215),
            ShiftFactor = c.IsNull("shift_factor") || !c.Has("shift_factor") ? null : c.Double("shift_factor", 0),
            ForceUpcast = c.Bool("force_upcast", true),
            SampleSize = sampleSize,
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Rejects sizes no VAE can have, before anything is allocated for them.</summary>
    void Validate(string source)
    {
        foreach (var (name, value) in new[]
                 {
                     ("in_channels", InChannels), ("out_channels", OutChannels), ("latent_channels", LatentChannels),
                     ("layers_per_block", LayersPerBlock), ("norm_num_groups", NormNumGroups), ("sample_size", SampleSize),
                 })
            ConfigLimits.RequireSize(source, name, value);
        if (BlockOutChannels.Count is < 1 or > 8)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{source}: block_out_channels has {BlockOutChannels.Count} entries; a VAE has 1 to 8 blocks");
        foreach (var channels in BlockOutChannels)
        {
            ConfigLimits.RequireSize(source, "block_out_channels entry", channels);
            if (channels % NormNumGroups != 0)
                throw new XDitException(Native.XditStatus.InvalidArgument,
                    $"{source}: norm_num_groups = {NormNumGroups} does not divide block_out_channels entry {channels}");
        }
        if (!double.IsFinite(ScalingFactor) || ScalingFactor == 0 || ShiftFactor is { } shift && !double.IsFinite(shift))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{source}: scaling_factor {ScalingFactor} and shift_factor {ShiftFactor} must be finite, the scale non-zero");
    }
}
