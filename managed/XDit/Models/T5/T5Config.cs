using XDit.Weights;
using System.Text.Json;
using XDit.Native;

namespace XDit.Models.T5;

/// <summary>
/// The encoder's part of transformers' <c>T5Config</c>, with transformers' defaults for missing fields
/// (those of the original t5-small: <c>feed_forward_proj = "relu"</c>). T5 v1.1 checkpoints, as PixArt,
/// SD3 and Flux use them, say <c>"gated-gelu"</c>. Configurations the engine does not implement are
/// rejected when read, never silently run differently.
/// </summary>
public sealed record T5Config
{
    public int VocabSize { get; init; } = 32128;
    public int DModel { get; init; } = 512;
    /// <summary>Width of one attention head; <c>NumHeads · DKv</c> need not equal <see cref="DModel"/>.</summary>
    public int DKv { get; init; } = 64;
    public int DFf { get; init; } = 2048;
    public int NumLayers { get; init; } = 6;
    public int NumHeads { get; init; } = 8;
    public int RelativeAttentionNumBuckets { get; init; } = 32;
    public int RelativeAttentionMaxDistance { get; init; } = 128;
    public double LayerNormEpsilon { get; init; } = 1e-6;
    /// <summary>The feed-forward activation (transformers' <c>dense_act_fn</c>).</summary>
    public T5Activation DenseActFn { get; init; } = T5Activation.Relu;
    /// <summary>True: <c>wo(act(wi_0 x) · wi_1 x)</c>; false: <c>wo(act(wi x))</c>.</summary>
    public bool IsGatedAct { get; init; }

    /// <summary>Width of the concatenated heads (the q, k, v outputs and the o input).</summary>
    public long InnerDim => (long)NumHeads * DKv;

    static readonly Dictionary<string, T5Activation> Activations = new()
    {
        ["relu"] = T5Activation.Relu,
        ["gelu_new"] = T5Activation.GeluTanh,
        ["gelu_pytorch_tanh"] = T5Activation.GeluTanh,
        ["gelu"] = T5Activation.GeluErf,
        ["silu"] = T5Activation.Silu,
        ["swish"] = T5Activation.Silu,
    };

    /// <summary>
    /// Reads a transformers <c>config.json</c>. <c>feed_forward_proj</c> is <c>"{act}"</c> or
    /// <c>"gated-{act}"</c>, where <c>"gated-gelu"</c> means the tanh GELU (<c>gelu_new</c>) for
    /// backward compatibility, as in transformers. Like transformers, a stored <c>dense_act_fn</c> or
    /// <c>is_gated_act</c> (which <c>save_pretrained</c> writes) takes precedence over what
    /// <c>feed_forward_proj</c> implies.
    /// </summary>
    public static T5Config FromJson(JsonElement json, string source = "config.json")
    {
        var c = JsonConfig.Parse(json.GetRawText(), source);
        int Int(string name, int fallback) => c.Int(name, fallback);
        string? Text(string name) => c.String(name);

        var modelType = Text("model_type");
        if (modelType is not null && modelType != "t5" && modelType != "mt5")
            throw new XDitException(XditStatus.Unsupported,
                $"{source}: model_type \"{modelType}\" is not supported; the T5 encoder implements \"t5\" and \"mt5\" " +
                "(one relative-position bias in block 0, shared by every block)");

        var feedForwardProj = Text("feed_forward_proj") ?? "relu";
        var parts = feedForwardProj.Split('-');
        var gated = parts[0] == "gated";
        if (parts.Length > 2 || (parts.Length == 2 && !gated))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: feed_forward_proj \"{feedForwardProj}\" is not of the form \"{{act}}\" or \"gated-{{act}}\" (e.g. \"relu\", \"gated-gelu\")");
        var actName = feedForwardProj == "gated-gelu" ? "gelu_new" : parts[^1];
        actName = Text("dense_act_fn") ?? actName;
        gated = c.Bool("is_gated_act", gated);

        var config = new T5Config
        {
            VocabSize = Int("vocab_size", 32128),
            DModel = Int("d_model", 512),
            DKv = Int("d_kv", 64),
            DFf = Int("d_ff", 2048),
            NumLayers = Int("num_layers", 6),
            NumHeads = Int("num_heads", 8),
            RelativeAttentionNumBuckets = Int("relative_attention_num_buckets", 32),
            RelativeAttentionMaxDistance = Int("relative_attention_max_distance", 128),
            LayerNormEpsilon = c.Double("layer_norm_epsilon", 1e-6),
            DenseActFn = ParseActivation(actName, source),
            IsGatedAct = gated,
        };
        config.Validate(source);
        return config;
    }

    static T5Activation ParseActivation(string name, string source) =>
        Activations.TryGetValue(name, out var activation)
            ? activation
            : throw new XDitException(XditStatus.Unsupported,
                $"{source}: the feed-forward activation \"{name}\" is not supported (supported: {string.Join(", ", Activations.Keys)})");

    /// <summary>Rejects sizes no T5 can have, before any memory is allocated for them.</summary>
    public void Validate(string source = "T5Config")
    {
        foreach (var (name, value) in new[]
                 {
                     ("vocab_size", VocabSize), ("d_model", DModel), ("d_kv", DKv), ("d_ff", DFf),
                     ("num_layers", NumLayers), ("num_heads", NumHeads),
                 })
            ConfigLimits.RequireSize(source, name, value);
        ConfigLimits.RequireSize(source, "inner size (num_heads × d_kv)", (long)NumHeads * DKv);
        // The bidirectional buckets: half per direction, of which half are exact offsets.
        var exactBuckets = RelativeAttentionNumBuckets / 4;
        if (exactBuckets < 1 || RelativeAttentionMaxDistance <= exactBuckets)
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: relative_attention_num_buckets = {RelativeAttentionNumBuckets} and relative_attention_max_distance = " +
                $"{RelativeAttentionMaxDistance} leave no logarithmic buckets (the encoder needs at least 4 buckets and a " +
                "max distance beyond a quarter of them)");
        if (!(LayerNormEpsilon >= 0) || !double.IsFinite(LayerNormEpsilon))
            throw new XDitException(XditStatus.InvalidArgument, $"{source}: layer_norm_epsilon = {LayerNormEpsilon} must not be negative");
    }
}
