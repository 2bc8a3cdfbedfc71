using System.Text.Json.Nodes;
using XDit.Text;

namespace XDit.Pipelines;

/// <summary>
/// The configs of the components SD3 and Flux share, as their diffusers folders have them: the CLIP
/// text encoders (transformers' <c>CLIPTextConfig</c>), T5 v1.1 XXL, the 16-channel flow-matching VAE;
/// their tiny test versions; and the narrowing of each for tests of the real layouts.
/// </summary>
internal static class MmditComponents
{
    /// <summary>CLIP's 49408 ids: 256 bytes, 256 word-final bytes, 48894 merges, two specials.</summary>
    const int ClipVocabSize = 49408;

    /// <summary>openai/clip-vit-large-patch14's text encoder (SD3's <c>text_encoder</c>, Flux's
    /// <c>text_encoder</c>): 12 layers of 12 heads, 768 wide, quick GELU.</summary>
    public static JsonObject ClipL(bool withProjection) =>
        Clip(withProjection, hidden: 768, intermediate: 3072, layers: 12, heads: 12, projection: 768, "quick_gelu", ClipVocabSize);

    /// <summary>OpenCLIP ViT-bigG/14's text encoder with its projection (SD3's <c>text_encoder_2</c>):
    /// 32 layers of 20 heads, 1280 wide, exact GELU.</summary>
    public static JsonObject ClipBigG() =>
        Clip(true, hidden: 1280, intermediate: 5120, layers: 32, heads: 20, projection: 1280, "gelu", ClipVocabSize);

    /// <summary>A 2-layer CLIP of 4 heads, 32 wide, over the written tokenizer's vocabulary only.</summary>
    public static JsonObject TinyClip(bool withProjection, string activation) =>
        Clip(withProjection, hidden: 32, intermediate: 64, layers: 2, heads: 4, projection: 32, activation, ClipVocabularyWriter.MinimumVocabSize);

    /// <summary>
    /// A text encoder config as the SD3 and Flux folders hold it. The special ids are those of configs
    /// written before transformers 4.31 (bos 0, pad 1, eos 2), which the released folders still carry:
    /// with eos 2, transformers pools at the largest id of a prompt, <c>&lt;|endoftext|&gt;</c>.
    /// </summary>
    static JsonObject Clip(bool withProjection, int hidden, int intermediate, int layers, int heads, int projection,
        string activation, int vocab) => new()
    {
        ["architectures"] = new JsonArray(withProjection ? "CLIPTextModelWithProjection" : "CLIPTextModel"),
        ["attention_dropout"] = 0.0, ["bos_token_id"] = 0, ["dropout"] = 0.0, ["eos_token_id"] = 2,
        ["hidden_act"] = activation, ["hidden_size"] = hidden, ["intermediate_size"] = intermediate,
        ["layer_norm_eps"] = 1e-5, ["max_position_embeddings"] = 77, ["model_type"] = "clip_text_model",
        ["num_attention_heads"] = heads, ["num_hidden_layers"] = layers, ["pad_token_id"] = 1,
        ["projection_dim"] = projection, ["vocab_size"] = vocab,
    };

    /// <summary>google/t5-v1_1-xxl's encoder (SD3's <c>text_encoder_3</c>, Flux's <c>text_encoder_2</c>):
    /// 24 layers of 64 heads × 64, 4096 wide, gated GELU, 32128 ids of which 100 are sentinels.</summary>
    public static JsonObject T5Xxl() => T5(dModel: 4096, dKv: 64, dFf: 10240, layers: 24, heads: 64, vocab: 32128, extraIds: 100);

    /// <summary>A 2-layer T5 of 4 heads × 16, 64 wide: wide enough for SD3's CLIP-L | CLIP-G
    /// embeddings (2 × 32), which the SD3 pipeline pads to T5's width.</summary>
    public static JsonObject TinyT5() => T5(dModel: 64, dKv: 16, dFf: 128, layers: 2, heads: 4, vocab: 128, extraIds: 0);

    static JsonObject T5(int dModel, int dKv, int dFf, int layers, int heads, int vocab, int extraIds) => new()
    {
        ["architectures"] = new JsonArray("T5EncoderModel"), ["model_type"] = "t5",
        ["d_model"] = dModel, ["d_kv"] = dKv, ["d_ff"] = dFf, ["num_layers"] = layers, ["num_heads"] = heads,
        ["vocab_size"] = vocab, ["feed_forward_proj"] = "gated-gelu", ["dense_act_fn"] = "gelu_new", ["is_gated_act"] = true,
        ["layer_norm_epsilon"] = 1e-6, ["relative_attention_num_buckets"] = 32, ["relative_attention_max_distance"] = 128,
        ["_xdit_extra_ids"] = extraIds,
    };

    /// <summary>The 16-channel VAE of SD3 and Flux (same shape, own latent statistics): four levels of
    /// [128, 256, 512, 512], 2 layers per block, no quant convs.</summary>
    public static JsonObject Vae(double scalingFactor, double shiftFactor) =>
        Vae([128, 256, 512, 512], layersPerBlock: 2, groups: 32, sampleSize: 1024, scalingFactor, shiftFactor);

    /// <summary>Four levels (a factor of 8, as the real VAE) of [16, 32, 32, 32], one layer each.</summary>
    public static JsonObject TinyVae(double scalingFactor, double shiftFactor) =>
        Vae([16, 32, 32, 32], layersPerBlock: 1, groups: 8, sampleSize: 128, scalingFactor, shiftFactor);

    static JsonObject Vae(int[] channels, int layersPerBlock, int groups, int sampleSize, double scalingFactor, double shiftFactor) => new()
    {
        ["_class_name"] = "AutoencoderKL", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion, ["act_fn"] = "silu",
        ["block_out_channels"] = new JsonArray(channels.Select(c => (JsonNode)c).ToArray()),
        ["down_block_types"] = new JsonArray(channels.Select(_ => (JsonNode)"DownEncoderBlock2D").ToArray()),
        ["force_upcast"] = true, ["in_channels"] = 3, ["latent_channels"] = 16, ["latents_mean"] = null, ["latents_std"] = null,
        ["layers_per_block"] = layersPerBlock, ["mid_block_add_attention"] = true, ["norm_num_groups"] = groups,
        ["out_channels"] = 3, ["sample_size"] = sampleSize, ["scaling_factor"] = scalingFactor, ["shift_factor"] = shiftFactor,
        ["up_block_types"] = new JsonArray(channels.Select(_ => (JsonNode)"UpDecoderBlock2D").ToArray()),
        ["use_post_quant_conv"] = false, ["use_quant_conv"] = false,
    };

    /// <summary>A CLIP with every width divided by <paramref name="factor"/> (the width rounded down to a
    /// multiple of the heads), <paramref name="layers"/> layers and the same vocabulary.</summary>
    public static JsonObject ReducedClip(JsonObject clip, int factor, int layers)
    {
        var copy = (JsonObject)clip.DeepClone();
        var heads = Math.Max(1, RandomFolderWriter.Int(clip, "num_attention_heads") / factor);
        copy["num_attention_heads"] = heads;
        copy["hidden_size"] = Math.Max(heads, RandomFolderWriter.Int(clip, "hidden_size") / factor / heads * heads);
        copy["intermediate_size"] = Math.Max(1, RandomFolderWriter.Int(clip, "intermediate_size") / factor);
        copy["projection_dim"] = Math.Max(1, RandomFolderWriter.Int(clip, "projection_dim") / factor);
        copy["num_hidden_layers"] = layers;
        return copy;
    }

    /// <summary>A T5 with its widths and heads divided by <paramref name="factor"/>, <paramref name="layers"/>
    /// layers and the same vocabulary.</summary>
    public static JsonObject ReducedT5(JsonObject t5, int factor, int layers)
    {
        var copy = (JsonObject)t5.DeepClone();
        foreach (var key in new[] { "d_model", "d_ff", "num_heads" }) copy[key] = Math.Max(1, RandomFolderWriter.Int(t5, key) / factor);
        copy["num_layers"] = layers;
        copy["d_kv"] = Math.Max(1, RandomFolderWriter.Int(copy, "d_model") / RandomFolderWriter.Int(copy, "num_heads"));
        return copy;
    }

    /// <summary>A VAE with its groups and channels divided by <paramref name="factor"/> (channels at least
    /// 8 and a multiple of the groups, which group norm needs); the levels, and so the factor of 8, stay.</summary>
    public static JsonObject ReducedVae(JsonObject vae, int factor)
    {
        var copy = (JsonObject)vae.DeepClone();
        var groups = Math.Max(1, RandomFolderWriter.Int(vae, "norm_num_groups") / factor);
        copy["norm_num_groups"] = groups;
        copy["block_out_channels"] = new JsonArray(vae["block_out_channels"]!.AsArray()
            .Select(c => (JsonNode)Math.Max(groups, Math.Max(8, c!.GetValue<int>() / factor) / groups * groups)).ToArray());
        return copy;
    }
}
