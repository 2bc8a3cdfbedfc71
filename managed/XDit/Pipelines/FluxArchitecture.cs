using System.Text.Json.Nodes;
using XDit.Models.Clip;
using XDit.Models.Flux;
using XDit.Models.T5;
using XDit.Models.Vae;

namespace XDit.Pipelines;

/// <summary>
/// Named FLUX.1 architectures the engine can build without a checkpoint, written as a complete diffusers
/// folder laid out as black-forest-labs/FLUX.1-dev and -schnell are: <c>transformer</c> (sharded with an
/// index above the size limit), <c>text_encoder</c> + <c>tokenizer</c> (CLIP-L without projection: Flux
/// takes its pooled output), <c>text_encoder_2</c> + <c>tokenizer_2</c> (T5 v1.1 XXL, sharded, its embedding
/// stored once as <c>shared.weight</c>), <c>vae</c> (16 channels, no quant convs) and <c>scheduler</c>.
/// <c>flux-dev</c> (guidance-distilled: the guidance scale is an input of the transformer) and
/// <c>flux-schnell</c> (timestep-distilled, 4 steps, no guidance) carry the released configurations;
/// <c>tiny-flux</c> is the built-in test pipeline, shaped like dev (4 heads of 16 so that every parallel
/// mesh of up to 8 ranks applies, 4 double- and 4 single-stream blocks, 2-layer text encoders, a 4-level
/// VAE, a 30-token text, 128² images). Weights are random, made deterministically from a seed. The
/// defaults are those of diffusers' <c>FluxPipeline.__call__</c> for dev and of the schnell model card.
/// </summary>
public sealed record FluxArchitecture(string Name, JsonObject Transformer, JsonObject TextEncoder, JsonObject TextEncoder2,
    JsonObject Vae, JsonObject Scheduler, int MaxSequenceLength, int DefaultSteps, double DefaultGuidanceScale, int DefaultImageSize)
{
    public static readonly IReadOnlyList<string> Names = ["tiny-flux", "flux-dev", "flux-schnell"];

    /// <summary>The VAE's latent statistics of FLUX.1's vae/config.json.</summary>
    const double ScalingFactor = 0.3611, ShiftFactor = 0.1159;

    public static FluxArchitecture Get(string name) => name switch
    {
        "tiny-flux" => Tiny(),
        "flux-dev" => Released(dev: true),
        "flux-schnell" => Released(dev: false),
        _ => throw new XDitException(Native.XditStatus.InvalidArgument,
            $"unknown Flux architecture '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>Whether the transformer embeds the guidance scale (dev) rather than running without
    /// guidance (schnell).</summary>
    public bool GuidanceEmbeds => Transformer["guidance_embeds"]!.GetValue<bool>();

    /// <summary>The same layout with fewer layers and narrower widths (for tests of the real layout): every
    /// width and head count divided by <paramref name="factor"/> (the head width stays: the rotary axes
    /// cover it), <paramref name="layers"/> double- and as many single-stream blocks, <paramref name="layers"/>
    /// layers in the text encoders, and the widths that must agree made to agree again.</summary>
    public FluxArchitecture Reduced(int factor, int layers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(factor, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(layers, 1);
        var clip = MmditComponents.ReducedClip(TextEncoder, factor, layers);
        var t5 = MmditComponents.ReducedT5(TextEncoder2, factor, layers);
        var transformer = (JsonObject)Transformer.DeepClone();
        transformer["num_attention_heads"] = Math.Max(1, RandomFolderWriter.Int(Transformer, "num_attention_heads") / factor);
        transformer["num_layers"] = layers;
        transformer["num_single_layers"] = layers;
        transformer["joint_attention_dim"] = RandomFolderWriter.Int(t5, "d_model");
        transformer["pooled_projection_dim"] = RandomFolderWriter.Int(clip, "hidden_size");
        return this with { Transformer = transformer, TextEncoder = clip, TextEncoder2 = t5, Vae = MmditComponents.ReducedVae(Vae, factor) };
    }

    /// <summary>Writes the folder with random weights: the transformer and CLIP in <paramref name="dtype"/>,
    /// T5 in <paramref name="dtype"/> but bf16 for f16 (T5 never runs in f16), the VAE in f32. The
    /// transformer and T5 are split into shards with an index when larger than
    /// <paramref name="maxShardBytes"/>; CLIP and the VAE are single files, as released.</summary>
    public void WriteRandomFolder(string folder, ulong seed, DType dtype, long maxShardBytes = 2L << 30)
    {
        Directory.CreateDirectory(folder);
        using var context = DeviceContext.Create(Device.Cpu);
        RandomFolderWriter.WriteModelIndex(folder, "FluxPipeline",
            ("scheduler", "diffusers", "FlowMatchEulerDiscreteScheduler"),
            ("text_encoder", "transformers", "CLIPTextModel"),
            ("text_encoder_2", "transformers", "T5EncoderModel"),
            ("tokenizer", "transformers", "CLIPTokenizer"),
            ("tokenizer_2", "transformers", "T5TokenizerFast"),
            ("transformer", "diffusers", "FluxTransformer2DModel"),
            ("vae", "diffusers", "AutoencoderKL"));

        using (var transformer = new FluxTransformer2DModel(FluxConfig.FromJson(RandomFolderWriter.ToElement(Transformer))))
            RandomFolderWriter.WriteModel(folder, "transformer", Transformer, transformer, "diffusion_pytorch_model", context, dtype, seed, maxShardBytes);
        using (var clip = new ClipTextModel(ClipTextConfig.FromJson(RandomFolderWriter.ToElement(TextEncoder))))
            RandomFolderWriter.WriteModel(folder, "text_encoder", TextEncoder, clip, "model", context, dtype, seed + 1, long.MaxValue);
        using (var t5 = new T5EncoderModel(T5Config.FromJson(RandomFolderWriter.ToElement(TextEncoder2))))
            RandomFolderWriter.WriteModel(folder, "text_encoder_2", TextEncoder2, t5, "model", context,
                dtype == DType.F16 ? DType.BF16 : dtype, seed + 2, maxShardBytes);
        using (var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(Vae))))
            RandomFolderWriter.WriteModel(folder, "vae", Vae, vae, "diffusion_pytorch_model", context, DType.F32, seed + 3, long.MaxValue);

        RandomFolderWriter.WriteClipTokenizer(folder, "tokenizer", TextEncoder, "<|endoftext|>");
        RandomFolderWriter.WriteT5Tokenizer(folder, "tokenizer_2", TextEncoder2);
        RandomFolderWriter.WriteScheduler(folder, Scheduler);
    }

    static JsonObject FluxTransformer(int heads, int headDim, int[] axesDimsRope, int layers, int singleLayers,
        int jointAttentionDim, int pooledProjectionDim, bool guidanceEmbeds) => new()
    {
        ["_class_name"] = "FluxTransformer2DModel", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion,
        ["attention_head_dim"] = headDim, ["axes_dims_rope"] = new JsonArray(axesDimsRope.Select(d => (JsonNode)d).ToArray()),
        ["guidance_embeds"] = guidanceEmbeds, ["in_channels"] = 64, ["joint_attention_dim"] = jointAttentionDim,
        ["num_attention_heads"] = heads, ["num_layers"] = layers, ["num_single_layers"] = singleLayers, ["out_channels"] = null,
        ["patch_size"] = 1, ["pooled_projection_dim"] = pooledProjectionDim,
    };

    /// <summary>
    /// The scheduler configs of the two releases. FLUX.1-dev shifts its sigmas by the image size
    /// (<c>use_dynamic_shifting</c>, μ from 0.5 at 256 tokens to 1.15 at 4096); FLUX.1-schnell's
    /// scheduler_config.json keeps the same base/max fields but turns dynamic shifting off with shift 1,
    /// so its sigmas are unshifted, as Black Forest Labs' reference sampler runs schnell.
    /// </summary>
    static JsonObject FlowMatchScheduler(bool dynamicShifting) => new()
    {
        ["_class_name"] = "FlowMatchEulerDiscreteScheduler", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion,
        ["base_image_seq_len"] = 256, ["base_shift"] = 0.5, ["max_image_seq_len"] = 4096, ["max_shift"] = 1.15,
        ["num_train_timesteps"] = 1000, ["shift"] = dynamicShifting ? 3.0 : 1.0, ["use_dynamic_shifting"] = dynamicShifting,
    };

    static FluxArchitecture Tiny() => new("tiny-flux",
        // Head width 16 = rotary axes 4 + 6 + 6; T5's width is the text width, CLIP's the pooled width.
        FluxTransformer(heads: 4, headDim: 16, axesDimsRope: [4, 6, 6], layers: 4, singleLayers: 4,
            jointAttentionDim: 64, pooledProjectionDim: 32, guidanceEmbeds: true),
        MmditComponents.TinyClip(withProjection: false, "quick_gelu"),
        MmditComponents.TinyT5(),
        MmditComponents.TinyVae(ScalingFactor, ShiftFactor),
        FlowMatchScheduler(dynamicShifting: true),
        MaxSequenceLength: 30, DefaultSteps: 28, DefaultGuidanceScale: 3.5, DefaultImageSize: 128);

    /// <summary>FLUX.1-dev and -schnell: 19 double- and 38 single-stream blocks of 24 heads × 128 (3072
    /// wide; rotary axes 16 + 56 + 56), T5's 4096-wide text, CLIP-L's 768-wide pooled embedding, packed
    /// 2×2 patches of 16 latent channels (64 features). dev: 512 text tokens, 28 steps, guidance 3.5
    /// (embedded); schnell: 256 tokens, 4 steps, no guidance.</summary>
    static FluxArchitecture Released(bool dev) => new(dev ? "flux-dev" : "flux-schnell",
        FluxTransformer(heads: 24, headDim: 128, axesDimsRope: [16, 56, 56], layers: 19, singleLayers: 38,
            jointAttentionDim: 4096, pooledProjectionDim: 768, guidanceEmbeds: dev),
        MmditComponents.ClipL(withProjection: false),
        MmditComponents.T5Xxl(),
        MmditComponents.Vae(ScalingFactor, ShiftFactor),
        FlowMatchScheduler(dynamicShifting: dev),
        MaxSequenceLength: dev ? 512 : 256, DefaultSteps: dev ? 28 : 4, DefaultGuidanceScale: dev ? 3.5 : 0.0,
        DefaultImageSize: 1024);
}
