using XDit.Weights;
using System.Text.Json;
using XDit.Native;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextConfig</c> with its defaults for missing fields (those of
/// openai/clip-vit-base-patch32's text encoder). The text encoders of SD3, SDXL and Flux are CLIP-L/14
/// (<c>quick_gelu</c>, 768 wide, 12 layers) and OpenCLIP bigG/14 (<c>gelu</c>, 1280 wide, 32 layers).
/// Values no CLIP text encoder can have are rejected when read.
/// </summary>
public sealed record ClipTextConfig
{
    /// <summary>The <c>eos_token_id</c> of configs written before transformers 4.31, which the real CLIP-L
    /// and bigG folders still carry. For it transformers keeps the original pooling rule, the position of
    /// the largest id (<see cref="PooledPosition"/>).</summary>
    public const int LegacyEosTokenId = 2;

    public int VocabSize { get; init; } = 49408;
    public int HiddenSize { get; init; } = 512;
    public int IntermediateSize { get; init; } = 2048;
    /// <summary>Width of <c>text_projection</c>'s output (<c>text_embeds</c>); only the model with a
    /// projection uses it.</summary>
    public int ProjectionDim { get; init; } = 512;
    public int NumHiddenLayers { get; init; } = 12;
    public int NumAttentionHeads { get; init; } = 8;
    /// <summary>The longest sequence the position table covers (77 for every released CLIP).</summary>
    public int MaxPositionEmbeddings { get; init; } = 77;
    public ClipActivation HiddenAct { get; init; } = ClipActivation.QuickGelu;
    public double LayerNormEps { get; init; } = 1e-5;
    public int PadTokenId { get; init; } = 1;
    public int BosTokenId { get; init; } = 49406;
    /// <summary>The token whose final hidden state is the pooled output (see <see cref="PooledPosition"/>).</summary>
    public int EosTokenId { get; init; } = 49407;

    /// <summary>Width of one attention head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    static readonly Dictionary<string, ClipActivation> Activations = new()
    {
        ["quick_gelu"] = ClipActivation.QuickGelu,
        ["gelu"] = ClipActivation.GeluErf,
        ["gelu_new"] = ClipActivation.GeluTanh,
        ["gelu_pytorch_tanh"] = ClipActivation.GeluTanh,
    };

    /// <summary>Reads a transformers <c>config.json</c> of a <c>CLIPTextModel</c> or
    /// <c>CLIPTextModelWithProjection</c> (<c>model_type</c> <c>"clip_text_model"</c>). A missing or null
    /// field takes transformers' default; a field of the wrong type is an error.</summary>
    public static ClipTextConfig FromJson(JsonElement json, string source = "config.json")
    {
        var c = JsonConfig.Parse(json.GetRawText(), source);
        int Int(string name, int fallback) => c.Int(name, fallback);
        string? Text(string name) => c.String(name);

        var modelType = Text("model_type");
        if (modelType is not null && modelType != "clip_text_model")
            throw new XDitException(XditStatus.Unsupported,
                $"{source}: model_type \"{modelType}\" is not supported; the CLIP text encoder reads \"clip_text_model\" " +
                "(a text_encoder folder of a diffusers pipeline)");


        var config = new ClipTextConfig
        {
            VocabSize = Int("vocab_size", 49408),
            HiddenSize = Int("hidden_size", 512),
            IntermediateSize = Int("intermediate_size", 2048),
            ProjectionDim = Int("projection_dim", 512),
            NumHiddenLayers = Int("num_hidden_layers", 12),
            NumAttentionHeads = Int("num_attention_heads", 8),
            MaxPositionEmbeddings = Int("max_position_embeddings", 77),
            HiddenAct = ParseActivation(Text("hidden_act") ?? "quick_gelu", source),
            LayerNormEps = c.Double("layer_norm_eps", 1e-5),
            PadTokenId = Int("pad_token_id", 1),
            BosTokenId = Int("bos_token_id", 49406),
            EosTokenId = Int("eos_token_id", 49407),
        };
        config.Validate(source);
        return config;
    }

    static ClipActivation ParseActivation(string name, string source) =>
        Activations.TryGetValue(name, out var activation)
            ? activation
            : throw new XDitException(XditStatus.Unsupported,
                $"{source}: hidden_act \"{name}\" is not supported (supported: {string.Join(", ", Activations.Keys)})");

    /// <summary>Rejects sizes no CLIP text encoder can have, before any memory is allocated for them.</summary>
    public void Validate(string source = "ClipTextConfig")
    {
        foreach (var (name, value) in new[]
                 {
                     ("vocab_size", VocabSize), ("hidden_size", HiddenSize), ("intermediate_size", IntermediateSize),
                     ("projection_dim", ProjectionDim), ("num_hidden_layers", NumHiddenLayers),
                     ("num_attention_heads", NumAttentionHeads), ("max_position_embeddings", MaxPositionEmbeddings),
                 })
            ConfigLimits.RequireSize(source, name, value);
        if (HiddenSize % NumAttentionHeads != 0)
            throw new XDitException(XditStatus.InvalidArgument,
                $"{source}: hidden_size = {HiddenSize} is not divisible by num_attention_heads = {NumAttentionHeads}");
        if (!(LayerNormEps >= 0))
            throw new XDitException(XditStatus.InvalidArgument, $"{source}: layer_norm_eps = {LayerNormEps} must not be negative");
    }

    /// <summary>
    /// The position in one row of ids whose final hidden state becomes the pooled output, by transformers
    /// 4.44's rule: with <see cref="LegacyEosTokenId"/> the first position of the largest id (CLIP's
    /// <c>&lt;|endoftext|&gt;</c> is the last entry of its vocabulary, so that is the end of the prompt);
    /// otherwise the first position of <see cref="EosTokenId"/>, and position 0 where the row has none
    /// (what transformers' argmax over an all-false row gives).
    /// </summary>
    public int PooledPosition(ReadOnlySpan<long> row)
    {
        if (row.IsEmpty) throw new XDitException(XditStatus.InvalidArgument, "an empty row of ids has no pooled position");
        if (EosTokenId == LegacyEosTokenId)
        {
            var largest = 0;
            for (int i = 1; i < row.Length; i++)
                if (row[i] > row[largest]) largest = i;
            return largest;
        }
        return Math.Max(row.IndexOf(EosTokenId), 0);
    }
}
