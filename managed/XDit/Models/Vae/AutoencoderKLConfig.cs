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
        int Int(string name, int fallback) => json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;
        bool Bool(string name, bool fallback) =>
            json.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : fallback;
        double? Double(string name) => json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        // sample_size is one number or [height, width]; diffusers tiles with the first.
        var sampleSize = json.TryGetProperty("sample_size", out var size) && size.ValueKind == JsonValueKind.Array
            ? size.EnumerateArray().FirstOrDefault() : size;
        var blocks = json.TryGetProperty("block_out_channels", out var b) && b.ValueKind == JsonValueKind.Array
            ? b.EnumerateArray().Select(e => e.GetInt32()).ToArray() : [64];
        foreach (var kind in new[] { "down_block_types", "up_block_types" })
            if (json.TryGetProperty(kind, out var types) && types.ValueKind == JsonValueKind.Array)
                foreach (var t in types.EnumerateArray())
                    if (t.GetString() is not ("DownEncoderBlock2D" or "UpDecoderBlock2D"))
                        throw new XDitException(Native.XditStatus.Unsupported, $"{source}: {kind} entry \"{t.GetString()}\" is not supported");
        if (json.TryGetProperty("act_fn", out var act) && act.GetString() != "silu")
            throw new XDitException(Native.XditStatus.Unsupported, $"{source}: act_fn \"{act.GetString()}\" is not supported (silu is)");
        return new AutoencoderKLConfig
        {
            InChannels = Int("in_channels", 3),
            OutChannels = Int("out_channels", 3),
            LatentChannels = Int("latent_channels", 4),
            BlockOutChannels = blocks,
            LayersPerBlock = Int("layers_per_block", 1),
            NormNumGroups = Int("norm_num_groups", 32),
            MidBlockAddAttention = Bool("mid_block_add_attention", true),
            UseQuantConv = Bool("use_quant_conv", true),
            UsePostQuantConv = Bool("use_post_quant_conv", true),
            ScalingFactor = Double("scaling_factor") ?? 0.18215,
            ShiftFactor = Double("shift_factor"),
            ForceUpcast = Bool("force_upcast", true),
            SampleSize = sampleSize.ValueKind == JsonValueKind.Number ? sampleSize.GetInt32() : 32,
        };
    }
}
