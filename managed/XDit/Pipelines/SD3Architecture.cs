using System.Text.Json.Nodes;
using XDit.Models.Clip;
using XDit.Models.SD3;
using XDit.Models.T5;
using XDit.Models.Vae;

namespace XDit.Pipelines;

/// <summary>
/// Named Stable Diffusion 3 architectures the engine can build without a checkpoint, written as a complete
/// diffusers folder laid out as stabilityai/stable-diffusion-3-medium-diffusers is: <c>transformer</c>
/// (sharded with an index above the size limit), <c>text_encoder</c> + <c>tokenizer</c> (CLIP-L with
/// projection), <c>text_encoder_2</c> + <c>tokenizer_2</c> (OpenCLIP bigG with projection, padding with
/// <c>!</c>), <c>text_encoder_3</c> + <c>tokenizer_3</c> (T5 v1.1 XXL, sharded, its embedding stored once as
/// <c>shared.weight</c>), <c>vae</c> (16 channels, no quant convs) and <c>scheduler</c> (flow matching,
/// shift 3). <c>sd3-medium</c> carries the released configuration; <c>tiny-sd3</c> is the built-in test
/// pipeline (4 heads of 16 so that every parallel mesh of up to 8 ranks applies, 8 blocks, 2-layer text
/// encoders, a 4-level VAE, a 30-token T5 text, 128² images). Weights are random, made deterministically
/// from a seed. The defaults are those of diffusers' <c>StableDiffusion3Pipeline.__call__</c>.
/// </summary>
public sealed record SD3Architecture(string Name, JsonObject Transformer, JsonObject TextEncoder, JsonObject TextEncoder2,
    JsonObject TextEncoder3, JsonObject Vae, JsonObject Scheduler, int MaxSequenceLength, int DefaultSteps,
    double DefaultGuidanceScale, int DefaultImageSize)
{
    public static readonly IReadOnlyList<string> Names = ["tiny-sd3", "sd3-medium"];

    /// <summary>The VAE's latent statistics of stable-diffusion-3-medium-diffusers' vae/config.json.</summary>
    const double ScalingFactor = 1.5305, ShiftFactor = 0.0609;

    public static SD3Architecture Get(string name) => name switch
    {
        "tiny-sd3" => Tiny(),
        "sd3-medium" => Medium(),
        _ => throw new XDitException(Native.XditStatus.InvalidArgument,
            $"unknown SD3 architecture '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>The same layout with fewer layers and narrower widths (for tests of the real layout): every
    /// width and head count divided by <paramref name="factor"/> (the transformer's head width stays),
    /// <paramref name="layers"/> layers everywhere, and the widths that must agree made to agree again.</summary>
    public SD3Architecture Reduced(int factor, int layers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        var clipL = MmditComponents.ReducedClip(TextEncoder, factor, layers);
        var clipG = MmditComponents.ReducedClip(TextEncoder2, factor, layers);
        var t5 = MmditComponents.ReducedT5(TextEncoder3, factor, layers);
        var transformer = (JsonObject)Transformer.DeepClone();
        var heads = Math.Max(1, RandomFolderWriter.Int(Transformer, "num_attention_heads") / factor);
        transformer["num_attention_heads"] = heads;
        transformer["num_layers"] = layers;
        transformer["caption_projection_dim"] = heads * RandomFolderWriter.Int(Transformer, "attention_head_dim");
        transformer["joint_attention_dim"] = RandomFolderWriter.Int(t5, "d_model");
        transformer["pooled_projection_dim"] = RandomFolderWriter.Int(clipL, "projection_dim") + RandomFolderWriter.Int(clipG, "projection_dim");
        return this with
        {
            Transformer = transformer, TextEncoder = clipL, TextEncoder2 = clipG, TextEncoder3 = t5,
            Vae = MmditComponents.ReducedVae(Vae, factor),
        };
    }

    /// <summary>Writes the folder with random weights: the transformer and the CLIP encoders in
    /// <paramref name="dtype"/>, T5 in <paramref name="dtype"/> but bf16 for f16 (T5 never runs in f16),
    /// the VAE in f32. The transformer and T5 are split into shards with an index when larger than
    /// <paramref name="maxShardBytes"/>; the CLIP encoders and the VAE are single files, as released.</summary>
    public void WriteRandomFolder(string folder, ulong seed, DType dtype, long maxShardBytes = 2L << 30)
    {
        Directory.CreateDirectory(folder);
        using var context = DeviceContext.Create(Device.Cpu);
        RandomFolderWriter.WriteModelIndex(folder, "StableDiffusion3Pipeline",
            ("scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"),
            ("text_encoder", "transformers", "CLIPTextModelWithProjection"),
            ("text_encoder_2", "transformers", "CLIPTextModelWithProjection"),
            ("text_encoder_3", "transformers", "T5EncoderModel"),
            ("tokenizer", "transformers", "CLIPTokenizer"),
            ("tokenizer_2", "transformers", "CLIPTokenizer"),
            ("tokenizer_3", "transformers", "T5TokenizerFast"),
            ("transformer", "diffusers", "SD3Transformer2DModel"),
            ("vae", "diffusers", "AutoencoderKL"));

        using (var transformer = new SD3Transformer2DModel(SD3Config.FromJson(RandomFolderWriter.ToElement(Transformer))))
            RandomFolderWriter.WriteModel(folder, "transformer", Transformer, transformer, "diffusion_pytorch_model", context, dtype, seed, maxShardBytes);
        foreach (var (component, config, offset) in new[] { ("text_encoder", TextEncoder, 1UL), ("text_encoder_2", TextEncoder2, 2UL) })
        {
            using var clip = new ClipTextModel(ClipTextConfig.FromJson(RandomFolderWriter.ToElement(config)), withProjection: true);
            RandomFolderWriter.WriteModel(folder, component, config, clip, "model", context, dtype, seed + offset, long.MaxValue);
        }
        using (var t5 = new T5EncoderModel(T5Config.FromJson(RandomFolderWriter.ToElement(TextEncoder3))))
            RandomFolderWriter.WriteModel(folder, "text_encoder_3", TextEncoder3, t5, "model", context,
                dtype == DType.F16 ? DType.BF16 : dtype, seed + 3, maxShardBytes);
        using (var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(Vae))))
            RandomFolderWriter.WriteModel(folder, "vae", Vae, vae, "diffusion_pytorch_model", context, DType.F32, seed + 4, long.MaxValue);

        RandomFolderWriter.WriteClipTokenizer(folder, "tokenizer", TextEncoder, "<|endoftext|>");
        RandomFolderWriter.WriteClipTokenizer(folder, "tokenizer_2", TextEncoder2, "!");
        RandomFolderWriter.WriteT5Tokenizer(folder, "tokenizer_3", TextEncoder3);
        RandomFolderWriter.WriteScheduler(folder, Scheduler);
    }

    static JsonObject SD3Transformer(int heads, int layers, int jointAttentionDim, int pooledProjectionDim, int sampleSize,
        int posEmbedMaxSize, int headDim) => new()
    {
        ["_class_name"] = "SD3Transformer2DModel", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion,
        ["attention_head_dim"] = headDim, ["caption_projection_dim"] = heads * headDim, ["dual_attention_layers"] = new JsonArray(),
        ["in_channels"] = 16, ["joint_attention_dim"] = jointAttentionDim, ["num_attention_heads"] = heads, ["num_layers"] = layers,
        ["out_channels"] = 16, ["patch_size"] = 2, ["pooled_projection_dim"] = pooledProjectionDim,
        ["pos_embed_max_size"] = posEmbedMaxSize, ["qk_norm"] = null, ["sample_size"] = sampleSize,
    };

    /// <summary>stable-diffusion-3-medium-diffusers' scheduler_config.json: static shift 3.</summary>
    static JsonObject FlowMatchScheduler() => new()
    {
        ["_class_name"] = "FlowMatchEulerDiscreteScheduler", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion,
        ["num_train_timesteps"] = 1000, ["shift"] = 3.0,
    };

    static SD3Architecture Tiny() => new("tiny-sd3",
        // joint_attention_dim = T5's width (64), which holds CLIP-L | CLIP-G (32 + 32); pooled = 32 + 32.
        SD3Transformer(heads: 4, layers: 8, jointAttentionDim: 64, pooledProjectionDim: 64, sampleSize: 16, posEmbedMaxSize: 32, headDim: 16),
        MmditComponents.TinyClip(withProjection: true, "quick_gelu"),
        MmditComponents.TinyClip(withProjection: true, "gelu"),
        MmditComponents.TinyT5(),
        MmditComponents.TinyVae(ScalingFactor, ShiftFactor),
        FlowMatchScheduler(),
        MaxSequenceLength: 30, DefaultSteps: 28, DefaultGuidanceScale: 7.0, DefaultImageSize: 128);

    /// <summary>stable-diffusion-3-medium-diffusers: 24 layers of 24 heads × 64 (1536 wide), T5's 4096-wide
    /// text, pooled CLIP-L | CLIP-G (768 + 1280), a 192² position table, 128² latents (1024² images).</summary>
    static SD3Architecture Medium() => new("sd3-medium",
        SD3Transformer(heads: 24, layers: 24, jointAttentionDim: 4096, pooledProjectionDim: 2048, sampleSize: 128, posEmbedMaxSize: 192, headDim: 64),
        MmditComponents.ClipL(withProjection: true),
        MmditComponents.ClipBigG(),
        MmditComponents.T5Xxl(),
        MmditComponents.Vae(ScalingFactor, ShiftFactor),
        FlowMatchScheduler(),
        MaxSequenceLength: 256, DefaultSteps: 28, DefaultGuidanceScale: 7.0, DefaultImageSize: 1024);
}
