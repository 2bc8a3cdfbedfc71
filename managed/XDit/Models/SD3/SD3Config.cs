using System.Text.Json;
using XDit.Native;
using XDit.Weights;

namespace XDit.Models.SD3;

/// <summary>
/// The configuration of diffusers' <c>SD3Transformer2DModel</c> with diffusers' defaults for missing
/// fields (those of SD3-medium's shape: 18 layers of 18 heads × 64). SD3.0 checkpoints leave
/// <c>qk_norm</c> unset and have no dual-attention layers; SD3.5-large sets <c>qk_norm = "rms_norm"</c>,
/// and SD3.5-medium also gives its first layers a second image self-attention
/// (<c>dual_attention_layers</c>). Configurations the engine does not implement are rejected when read.
/// </summary>
public sealed record SD3Config
{
    /// <summary>The latent width of training; only the default image size depends on it (the position
    /// table is stored in the checkpoint and cropped to each latent).</summary>
    public int SampleSize { get; init; } = 128;
    public int PatchSize { get; init; } = 2;
    public int InChannels { get; init; } = 16;
    public int NumLayers { get; init; } = 18;
    public int AttentionHeadDim { get; init; } = 64;
    public int NumAttentionHeads { get; init; } = 18;
    /// <summary>Width of the text embeddings the model is given (CLIP-L | CLIP-G padded, then T5: 4096).</summary>
    public int JointAttentionDim { get; init; } = 4096;
    /// <summary>Width the text embeddings are projected to (<c>context_embedder</c>); equals the hidden size,
    /// since both streams meet in one attention.</summary>
    public int CaptionProjectionDim { get; init; } = 1152;
    /// <summary>Width of the pooled CLIP embeddings.</summary>
    public int PooledProjectionDim { get; init; } = 2048;
    public int OutChannels { get; init; } = 16;
    /// <summary>Side of the stored square position table (<c>pos_embed.pos_embed</c>); the largest patch
    /// grid the model accepts.</summary>
    public int PosEmbedMaxSize { get; init; } = 96;
    /// <summary>The blocks with SD3.5-medium's second self-attention on the image stream (<c>attn2</c>).</summary>
    public IReadOnlyList<int> DualAttentionLayers { get; init; } = [];
    /// <summary>RMS norms (eps 1e-6, one scale per head channel) on the queries and keys of every attention.</summary>
    public bool QkRmsNorm { get; init; }

    public int InnerDim => NumAttentionHeads * AttentionHeadDim;

    /// <summary>Reads a diffusers <c>config.json</c>; <paramref name="source"/> names it in errors.</summary>
    public static SD3Config FromJson(JsonElement json, string source = "config.json")
    {
        var config = JsonConfig.Parse(json.GetRawText(), source);
        var qkNorm = config.String("qk_norm");
        if (qkNorm is not (null or "rms_norm"))
            throw new XDitException(XditStatus.Unsupported,
                $"{source}: qk_norm \"{qkNorm}\" is not supported (SD3 checkpoints use null or \"rms_norm\")");
        if (config.IsNull("pos_embed_max_size"))
            throw new XDitException(XditStatus.Unsupported,
                $"{source}: pos_embed_max_size is null; the engine needs the stored, cropped position table of SD3 checkpoints");
        var inChannels = config.Int("in_channels", 16);
        var result = new SD3Config
        {
            SampleSize = config.Int("sample_size", 128),
            PatchSize = config.Int("patch_size", 2),
            InChannels = inChannels,
            NumLayers = config.Int("num_layers", 18),
            AttentionHeadDim = config.Int("attention_head_dim", 64),
            NumAttentionHeads = config.Int("num_attention_heads", 18),
            JointAttentionDim = config.Int("joint_attention_dim", 4096),
            CaptionProjectionDim = config.Int("caption_projection_dim", 1152),
            PooledProjectionDim = config.Int("pooled_projection_dim", 2048),
            // diffusers: out_channels = None means in_channels.
            OutChannels = config.IsNull("out_channels") ? inChannels : config.Int("out_channels", 16),
            PosEmbedMaxSize = config.Int("pos_embed_max_size", 96),
            DualAttentionLayers = config.IntArray("dual_attention_layers") ?? [],
            QkRmsNorm = qkNorm is not null,
        };
        result.Validate(source);
        return result;
    }

    /// <summary>Rejects sizes no SD3 transformer can have, before any memory is allocated for them.</summary>
    public void Validate(string source = nameof(SD3Config))
    {
        foreach (var (name, value) in new[]
                 {
                     ("sample_size", SampleSize), ("patch_size", PatchSize), ("in_channels", InChannels),
                     ("num_layers", NumLayers), ("attention_head_dim", AttentionHeadDim),
                     ("num_attention_heads", NumAttentionHeads), ("joint_attention_dim", JointAttentionDim),
                     ("caption_projection_dim", CaptionProjectionDim), ("pooled_projection_dim", PooledProjectionDim),
                     ("out_channels", OutChannels), ("pos_embed_max_size", PosEmbedMaxSize),
                 })
            ConfigLimits.RequireSize(source, name, value);
        ConfigLimits.RequireSize(source, "hidden size (heads × head dim)", (long)NumAttentionHeads * AttentionHeadDim);
        if (CaptionProjectionDim != InnerDim)
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: caption_projection_dim {CaptionProjectionDim} differs from the hidden size {InnerDim} " +
                $"(num_attention_heads {NumAttentionHeads} × attention_head_dim {AttentionHeadDim}); the text stream enters the joint attention at the hidden size");
        foreach (var layer in DualAttentionLayers)
            if (layer < 0 || layer >= NumLayers)
                throw new XDitException(XditStatus.InvalidArgument,
                    $"{source}: dual_attention_layers names layer {layer}, outside the {NumLayers} layers");
    }

    /// <summary>Whether block <paramref name="layer"/> has the second image self-attention.</summary>
    public bool HasDualAttention(int layer) => DualAttentionLayers.Contains(layer);
}
