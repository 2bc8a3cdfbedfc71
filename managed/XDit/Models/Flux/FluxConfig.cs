using XDit.Weights;
using System.Text.Json;
using XDit.Native;

namespace XDit.Models.Flux;

/// <summary>
/// The configuration of diffusers' <c>FluxTransformer2DModel</c>, with diffusers' defaults (those of
/// FLUX.1-dev and -schnell, which differ only in <see cref="GuidanceEmbeds"/>) for missing fields.
/// </summary>
public sealed record FluxConfig
{
    /// <summary>Only widens the output projection to p·p·out channels: the 2×2 patches of the latent are
    /// packed by the pipeline (<see cref="Ops.Layout.FluxPack"/>), so the model sees tokens of
    /// <see cref="InChannels"/> features whatever this is.</summary>
    public int PatchSize { get; init; } = 1;
    /// <summary>Features of a packed image token (4 · the VAE's latent channels).</summary>
    public int InChannels { get; init; } = 64;
    /// <summary>diffusers' <c>out_channels or in_channels</c>.</summary>
    public int OutChannels { get; init; } = 64;
    /// <summary>Double-stream blocks (<see cref="FluxTransformerBlock"/>).</summary>
    public int NumLayers { get; init; } = 19;
    /// <summary>Single-stream blocks (<see cref="FluxSingleTransformerBlock"/>).</summary>
    public int NumSingleLayers { get; init; } = 38;
    public int AttentionHeadDim { get; init; } = 128;
    public int NumAttentionHeads { get; init; } = 24;
    /// <summary>Width of the text encoder's (T5's) hidden states.</summary>
    public int JointAttentionDim { get; init; } = 4096;
    /// <summary>Width of the pooled text embedding (CLIP's).</summary>
    public int PooledProjectionDim { get; init; } = 768;
    /// <summary>True for guidance-distilled models (FLUX.1-dev): the guidance scale is embedded like the
    /// timestep and added to the conditioning. False for FLUX.1-schnell.</summary>
    public bool GuidanceEmbeds { get; init; }
    /// <summary>Rotary channels per column of the position ids (FLUX.1's are [0, row, column] for image
    /// tokens and zeros for text tokens, see <see cref="FluxPositionIds"/>); they add up to the head
    /// dimension.</summary>
    public IReadOnlyList<int> AxesDimsRope { get; init; } = [16, 56, 56];

    public int InnerDim => NumAttentionHeads * AttentionHeadDim;

    public static FluxConfig FromJson(JsonElement json, string source = "config.json")
    {
        var c = JsonConfig.Parse(json.GetRawText(), source);
        int Int(string name, int fallback) => c.Int(name, fallback);
        var inChannels = Int("in_channels", 64);
        var guidance = c.Bool("guidance_embeds", false);
        IReadOnlyList<int> axes = c.IntArray("axes_dims_rope", [16, 56, 56])!;
        var config = new FluxConfig
        {
            PatchSize = Int("patch_size", 1),
            InChannels = inChannels,
            OutChannels = Int("out_channels", inChannels),
            NumLayers = Int("num_layers", 19),
            NumSingleLayers = Int("num_single_layers", 38),
            AttentionHeadDim = Int("attention_head_dim", 128),
            NumAttentionHeads = Int("num_attention_heads", 24),
            JointAttentionDim = Int("joint_attention_dim", 4096),
            PooledProjectionDim = Int("pooled_projection_dim", 768),
            GuidanceEmbeds = guidance,
            AxesDimsRope = axes,
        };
        config.Validate(source);
        return config;
    }

    /// <summary>Rejects sizes no Flux model can have, before any memory is allocated for them.</summary>
    public void Validate(string source = "FluxConfig")
    {
        foreach (var (name, value) in new[]
                 {
                     ("patch_size", PatchSize), ("in_channels", InChannels), ("out_channels", OutChannels),
                     ("attention_head_dim", AttentionHeadDim), ("num_attention_heads", NumAttentionHeads),
                     ("joint_attention_dim", JointAttentionDim), ("pooled_projection_dim", PooledProjectionDim),
                 })
            ConfigLimits.RequireSize(source, name, value);
        ConfigLimits.RequireSize(source, "hidden size (heads × head dim)", (long)NumAttentionHeads * AttentionHeadDim);
        if (NumLayers < 0 || NumSingleLayers < 0)
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: num_layers = {NumLayers} and num_single_layers = {NumSingleLayers} must not be negative");
        var axes = "[" + string.Join(", ", AxesDimsRope) + "]";
        if (AxesDimsRope.Count == 0 || AxesDimsRope.Any(d => d <= 0 || d % 2 != 0))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: axes_dims_rope = {axes} must be a non-empty list of positive even sizes (rotary pairs)");
        if (AxesDimsRope.Sum() != AttentionHeadDim)
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: axes_dims_rope = {axes} adds up to {AxesDimsRope.Sum()}, but the rotary embedding turns every " +
                $"channel of a head: attention_head_dim = {AttentionHeadDim}");
    }
}
