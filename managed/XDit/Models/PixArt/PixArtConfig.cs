using System.Text.Json;

namespace XDit.Models.PixArt;

/// <summary>
/// The configuration of <c>PixArtTransformer2DModel</c> with diffusers' defaults for missing fields. The
/// engine implements the configuration PixArt-α and PixArt-Σ checkpoints use (adaLN-single, GELU-tanh
/// feed-forward, biased attention, LayerNorm without affine); other values are rejected when read.
/// </summary>
public sealed record PixArtConfig
{
    public int NumAttentionHeads { get; init; } = 16;
    public int AttentionHeadDim { get; init; } = 72;
    public int InChannels { get; init; } = 4;
    public int OutChannels { get; init; } = 8;
    public int NumLayers { get; init; } = 28;
    public int CaptionChannels { get; init; } = 4096;
    public int SampleSize { get; init; } = 128;
    public int PatchSize { get; init; } = 2;
    public double NormEps { get; init; } = 1e-6;
    /// <summary>Scale of the 2-D position grid; diffusers' default is max(sample_size / 64, 1).</summary>
    public double InterpolationScale { get; init; } = 2;
    /// <summary>PixArt-α's resolution and aspect-ratio conditioning.</summary>
    public bool UseAdditionalConditions { get; init; } = true;

    public int InnerDim => NumAttentionHeads * AttentionHeadDim;

    public static PixArtConfig FromJson(JsonElement json, string source = "config.json")
    {
        int Int(string name, int fallback) =>
            json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : fallback;
        void Require(string name, string expected)
        {
            if (json.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() != expected)
                throw new XDitException(Native.XditStatus.Unsupported,
                    $"{source}: {name} = \"{v.GetString()}\" is not supported (PixArt checkpoints use \"{expected}\")");
        }
        Require("norm_type", "ada_norm_single");
        Require("activation_fn", "gelu-approximate");
        Require("attention_type", "default");
        var sampleSize = Int("sample_size", 128);
        var inChannels = Int("in_channels", 4);
        var config = new PixArtConfig
        {
            NumAttentionHeads = Int("num_attention_heads", 16),
            AttentionHeadDim = Int("attention_head_dim", 72),
            InChannels = inChannels,
            OutChannels = json.TryGetProperty("out_channels", out var o) && o.ValueKind == JsonValueKind.Number ? o.GetInt32() : inChannels,
            NumLayers = Int("num_layers", 28),
            CaptionChannels = Int("caption_channels", 4096),
            SampleSize = sampleSize,
            PatchSize = Int("patch_size", 2),
            NormEps = json.TryGetProperty("norm_eps", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetDouble() : 1e-6,
            InterpolationScale = json.TryGetProperty("interpolation_scale", out var i) && i.ValueKind == JsonValueKind.Number
                ? i.GetDouble() : Math.Max(sampleSize / 64, 1),
            UseAdditionalConditions = json.TryGetProperty("use_additional_conditions", out var a) && a.ValueKind is JsonValueKind.True or JsonValueKind.False
                ? a.GetBoolean() : sampleSize == 128,
        };
        if (config.UseAdditionalConditions && config.InnerDim % 3 != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"{source}: use_additional_conditions needs a hidden size divisible by 3, got {config.InnerDim}");
        if (json.TryGetProperty("cross_attention_dim", out var c) && c.ValueKind == JsonValueKind.Number && c.GetInt32() != config.InnerDim)
            throw new XDitException(Native.XditStatus.Unsupported,
                $"{source}: cross_attention_dim {c.GetInt32()} differs from the hidden size {config.InnerDim}; PixArt projects captions to the hidden size");
        return config;
    }
}
