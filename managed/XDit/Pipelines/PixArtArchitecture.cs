using System.Text.Json.Nodes;
using XDit.Models.PixArt;
using XDit.Models.T5;
using XDit.Models.Vae;
using XDit.Nn;

namespace XDit.Pipelines;

/// <summary>
/// Named PixArt architectures the engine can build without a checkpoint, written as a complete diffusers
/// folder (model_index.json, per-component configs, safetensors weights — transformer and T5 sharded
/// with an index, T5's embedding stored once as <c>shared.weight</c> — tokenizer files, scheduler config)
/// and loaded back through the same loader as a downloaded checkpoint:
/// <c>pixart-alpha</c> and <c>pixart-sigma</c> carry the configurations of PixArt-XL-2-1024-MS and
/// PixArt-Sigma-XL-2-1024-MS (T5 v1.1 XXL, the SD VAE); <c>tiny-pixart</c> is the built-in test and demo
/// pipeline (4 heads of 16, 8 blocks, a 30-token caption, a 2-layer T5, a 4-level VAE: 128² images
/// in well under a second per step). Weights are random, made deterministically from a seed.
/// </summary>
public sealed record PixArtArchitecture(string Name, bool IsSigma, JsonObject Transformer, JsonObject TextEncoder,
    JsonObject Vae, int ExtraIds, int MaxSequenceLength, int DefaultImageSize)
{
    public static readonly IReadOnlyList<string> Names = ["tiny-pixart", "pixart-alpha", "pixart-sigma"];

    public static PixArtArchitecture Get(string name) => name switch
    {
        "tiny-pixart" => Tiny(),
        "pixart-alpha" => Full(false),
        "pixart-sigma" => Full(true),
        _ => throw new XDitException(Native.XditStatus.InvalidArgument,
            $"unknown PixArt architecture '{name}' (known: {string.Join(", ", Names)})"),
    };

    /// <summary>The same layout with fewer layers and narrower widths (for tests of real layouts):
    /// every size divided by <paramref name="factor"/>, at least one layer.</summary>
    public PixArtArchitecture Reduced(int factor, int layers)
    {
        JsonObject Scale(JsonObject source, params string[] keys)
        {
            var copy = (JsonObject)source.DeepClone();
            foreach (var key in keys) copy[key] = Math.Max(1, copy[key]!.GetValue<int>() / factor);
            return copy;
        }
        var transformer = Scale(Transformer, "num_attention_heads", "caption_channels");
        transformer["num_layers"] = layers;
        var textEncoder = Scale(TextEncoder, "d_model", "d_ff", "num_heads");
        textEncoder["num_layers"] = layers;
        textEncoder["d_kv"] = textEncoder["d_model"]!.GetValue<int>() / textEncoder["num_heads"]!.GetValue<int>();
        transformer["caption_channels"] = textEncoder["d_model"]!.GetValue<int>();
        transformer["cross_attention_dim"] = transformer["num_attention_heads"]!.GetValue<int>() * transformer["attention_head_dim"]!.GetValue<int>();
        var vae = (JsonObject)Vae.DeepClone();
        vae["block_out_channels"] = new JsonArray(Vae["block_out_channels"]!.AsArray().Select(c => (JsonNode)Math.Max(8, c!.GetValue<int>() / factor)).ToArray());
        vae["norm_num_groups"] = Math.Max(1, Vae["norm_num_groups"]!.GetValue<int>() / factor);
        return this with { Transformer = transformer, TextEncoder = textEncoder, Vae = vae };
    }

    /// <summary>Writes the folder with random weights in <paramref name="dtype"/>; weights larger than
    /// <paramref name="maxShardBytes"/> are split into shards with an index.</summary>
    public void WriteRandomFolder(string folder, ulong seed, DType dtype, long maxShardBytes = 2L << 30)
    {
        Directory.CreateDirectory(folder);
        using var context = DeviceContext.Create(Device.Cpu);
        RandomFolderWriter.WriteModelIndex(folder, IsSigma ? "PixArtSigmaPipeline" : "PixArtAlphaPipeline",
            ("scheduler", "diffusers", "DPMSolverMultistepScheduler"), ("text_encoder", "transformers", "T5EncoderModel"),
            ("tokenizer", "transformers", "T5Tokenizer"), ("transformer", "diffusers", "PixArtTransformer2DModel"),
            ("vae", "diffusers", "AutoencoderKL"));

        using (var transformer = new PixArtTransformer2DModel(PixArtConfig.FromJson(RandomFolderWriter.ToElement(Transformer))))
            RandomFolderWriter.WriteModel(folder, "transformer", Transformer, transformer, "diffusion_pytorch_model", context, dtype, seed, maxShardBytes);
        // T5 never runs in f16: its weights are written in bf16 or f32.
        var textDType = dtype == DType.F16 ? DType.BF16 : dtype;
        using (var textEncoder = new T5EncoderModel(T5Config.FromJson(RandomFolderWriter.ToElement(TextEncoder))))
            RandomFolderWriter.WriteModel(folder, "text_encoder", TextEncoder, textEncoder, "model", context, textDType, seed + 1, maxShardBytes);
        using (var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(Vae))))
            RandomFolderWriter.WriteModel(folder, "vae", Vae, vae, "diffusion_pytorch_model", context, DType.F32, seed + 2, long.MaxValue);

        RandomFolderWriter.WriteT5Tokenizer(folder, "tokenizer", TextEncoder, MaxSequenceLength);
        RandomFolderWriter.WriteScheduler(folder, new JsonObject
        {
            ["_class_name"] = "DPMSolverMultistepScheduler", ["_diffusers_version"] = RandomFolderWriter.DiffusersVersion,
            ["algorithm_type"] = "dpmsolver++", ["beta_end"] = 0.02, ["beta_schedule"] = "linear", ["beta_start"] = 0.0001,
            ["lower_order_final"] = true, ["num_train_timesteps"] = 1000, ["prediction_type"] = "epsilon",
            ["solver_order"] = 2, ["solver_type"] = "midpoint", ["timestep_spacing"] = "linspace", ["final_sigmas_type"] = "zero",
        });
    }

    static JsonObject T5(int dModel, int dKv, int dFf, int layers, int heads, int vocab, int extraIds) => new()
    {
        ["architectures"] = new JsonArray("T5EncoderModel"), ["model_type"] = "t5",
        ["d_model"] = dModel, ["d_kv"] = dKv, ["d_ff"] = dFf, ["num_layers"] = layers, ["num_heads"] = heads,
        ["vocab_size"] = vocab, ["feed_forward_proj"] = "gated-gelu", ["dense_act_fn"] = "gelu_new", ["is_gated_act"] = true,
        ["layer_norm_epsilon"] = 1e-6, ["relative_attention_num_buckets"] = 32, ["relative_attention_max_distance"] = 128,
        ["_xdit_extra_ids"] = extraIds,
    };

    static JsonObject SdVae(int[] channels, int layersPerBlock, int groups) => new()
    {
        ["_class_name"] = "AutoencoderKL", ["_diffusers_version"] = "0.32.2", ["act_fn"] = "silu",
        ["block_out_channels"] = new JsonArray(channels.Select(c => (JsonNode)c).ToArray()),
        ["down_block_types"] = new JsonArray(channels.Select(_ => (JsonNode)"DownEncoderBlock2D").ToArray()),
        ["up_block_types"] = new JsonArray(channels.Select(_ => (JsonNode)"UpDecoderBlock2D").ToArray()),
        ["in_channels"] = 3, ["out_channels"] = 3, ["latent_channels"] = 4, ["layers_per_block"] = layersPerBlock,
        ["norm_num_groups"] = groups, ["sample_size"] = 512, ["scaling_factor"] = 0.18215, ["force_upcast"] = true,
        ["use_quant_conv"] = true, ["use_post_quant_conv"] = true,
    };

    static JsonObject PixArtTransformer(int heads, int headDim, int layers, int captionChannels, int sampleSize,
        double? interpolationScale, bool? additionalConditions) => new()
    {
        ["_class_name"] = "PixArtTransformer2DModel", ["_diffusers_version"] = "0.32.2",
        ["activation_fn"] = "gelu-approximate", ["attention_bias"] = true, ["attention_head_dim"] = headDim,
        ["attention_type"] = "default", ["caption_channels"] = captionChannels, ["cross_attention_dim"] = heads * headDim,
        ["dropout"] = 0.0, ["in_channels"] = 4, ["interpolation_scale"] = interpolationScale, ["norm_elementwise_affine"] = false,
        ["norm_eps"] = 1e-6, ["norm_num_groups"] = 32, ["norm_type"] = "ada_norm_single", ["num_attention_heads"] = heads,
        ["num_embeds_ada_norm"] = 1000, ["num_layers"] = layers, ["out_channels"] = 8, ["patch_size"] = 2,
        ["sample_size"] = sampleSize, ["upcast_attention"] = false, ["use_additional_conditions"] = additionalConditions,
    };

    static PixArtArchitecture Tiny() => new("tiny-pixart", true,
        PixArtTransformer(heads: 4, headDim: 16, layers: 8, captionChannels: 32, sampleSize: 16, interpolationScale: 1, additionalConditions: false),
        T5(dModel: 32, dKv: 8, dFf: 64, layers: 2, heads: 4, vocab: 128, extraIds: 0),
        SdVae([16, 32, 32, 32], layersPerBlock: 1, groups: 8),
        ExtraIds: 0, MaxSequenceLength: 30, DefaultImageSize: 128);

    static PixArtArchitecture Full(bool sigma) => new(sigma ? "pixart-sigma" : "pixart-alpha", sigma,
        PixArtTransformer(heads: 16, headDim: 72, layers: 28, captionChannels: 4096, sampleSize: 128,
            interpolationScale: sigma ? 2 : null, additionalConditions: sigma ? false : null),
        T5(dModel: 4096, dKv: 64, dFf: 10240, layers: 24, heads: 64, vocab: 32128, extraIds: 100),
        SdVae([128, 256, 512, 512], layersPerBlock: 2, groups: 32),
        ExtraIds: 100, MaxSequenceLength: sigma ? 300 : 120, DefaultImageSize: 1024);
}
