using XDit.Weights;
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
        var c = JsonConfig.Parse(json.GetRawText(), source);
        void Require(string name, string expected)
        {
            if (c.String(name) is { } value && value != expected)
                throw new XDitException(Native.XditStatus.Unsupported,
                    $"{source}: {name} = \"{value}\" is not supported (PixArt checkpoints use \"{expected}\")");
        }
        Require("norm_type", "ada_norm_single");
        Require("activation_fn", "gelu-approximate");
        Require("attention_type", "default");
        var sampleSize = c.Int("sample_size", 128);
        var inChannels = c.Int("in_channels", 4);
        var config = new PixArtConfig
        {
            NumAttentionHeads = c.Int("num_attention_heads", 16),
            AttentionHeadDim = c.Int("attention_head_dim", 72),
            InChannels = inChannels,
            OutChannels = c.Int("out_channels", inChannels),
            NumLayers = c.Int("num_layers", 28),
            CaptionChannels = c.Int("caption_channels", 4096),
            SampleSize = sampleSize,
            PatchSize = c.Int("patch_size", 2),
            NormEps = c.Double("norm_eps", 1e-6),
            InterpolationScale = c.Double("interpolation_scale", Math.Max(sampleSize / 64, 1)),
            UseAdditionalConditions = c.Bool("use_additional_conditions", sampleSize == 128),
        };
        config.Validate(source);
        if (c.Has("cross_attention_dim") && !c.IsNull("cross_attention_dim") && c.Int("cross_attention_dim", 0) != config.InnerDim)
            throw new XDitException(Native.XditStatus.Unsupported,
                $"{source}: cross_attention_dim {c.Int("cross_attention_dim", 0)} differs from the hidden size {config.InnerDim}; PixArt projects captions to the hidden size");
        return config;
    }

    /// <summary>Rejects sizes no PixArt can have, before anything is allocated for them.</summary>
    void Validate(string source)
    {
        foreach (var (name, value) in new[]
                 {
                     ("num_attention_heads", NumAttentionHeads), ("attention_head_dim", AttentionHeadDim), ("in_channels", InChannels),
                     ("out_channels", OutChannels), ("num_layers", NumLayers), ("caption_channels", CaptionChannels),
                     ("sample_size", SampleSize), ("patch_size", PatchSize),
                 })
            ConfigLimits.RequireSize(source, name, value);
        ConfigLimits.RequireSize(source, "hidden size (heads × head dim)", (long)NumAttentionHeads * AttentionHeadDim);
        if (!(NormEps >= 0) || !double.IsFinite(NormEps))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{source}: norm_eps = {NormEps} must be finite and >= 0");
        if (!(InterpolationScale > 0) || !double.IsFinite(InterpolationScale))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{source}: interpolation_scale = {InterpolationScale} must be finite and positive");
        if (UseAdditionalConditions && InnerDim % 3 != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"{source}: use_additional_conditions needs a hidden size divisible by 3, got {InnerDim}");
    }
}
