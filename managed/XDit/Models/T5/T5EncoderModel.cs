using XDit.Native;
using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Tensors;

namespace XDit.Models.T5;

/// <summary>
/// transformers' <c>T5EncoderModel</c>, the text encoder of PixArt-α/Σ, SD3 and Flux (T5 v1.1): token
/// embedding (<c>shared</c>), <see cref="T5Block"/>s sharing block 0's relative-position bias, and a final
/// T5LayerNorm. Parameter names equal the checkpoint's; <see cref="LoadWeights"/> resolves the tied
/// <c>encoder.embed_tokens.weight</c>.
/// </summary>
/// <remarks>
/// Runs in f32 or bf16, never f16: T5's activations outgrow f16's range (transformers clamps them in f16,
/// which changes the result), so f16 is rejected. bf16 runs with bf16 activations and fp32 arithmetic
/// inside every op.
/// </remarks>
public sealed class T5EncoderModel : Module
{
    public T5EncoderModel(T5Config config)
    {
        config.Validate();
        Config = config;
        Shared = Child("shared", new Embedding(config.VocabSize, config.DModel));
        Blocks = Enumerable.Range(0, config.NumLayers)
            .Select(i => Child($"encoder.block.{i}", new T5Block(config, hasRelativeAttentionBias: i == 0))).ToArray();
        FinalLayerNorm = Child("encoder.final_layer_norm", new RmsNorm(config.DModel, config.LayerNormEpsilon));
    }

    public T5Config Config { get; }
    /// <summary>The token embedding [vocab_size, d_model] (<c>shared.weight</c>, which the encoder's
    /// <c>embed_tokens</c> is tied to).</summary>
    public Embedding Shared { get; }
    public IReadOnlyList<T5Block> Blocks { get; }
    public RmsNorm FinalLayerNorm { get; }

    /// <summary>
    /// Loads a transformers checkpoint (a <c>T5EncoderModel</c>'s, or a full T5's) in
    /// <paramref name="dtype"/> (f32 or bf16). The token embedding may be stored as <c>shared.weight</c>,
    /// <c>encoder.embed_tokens.weight</c> or both (<see cref="T5TiedEmbeddingSource"/>), and a full
    /// checkpoint's <c>decoder.*</c> and <c>lm_head.weight</c> are skipped, as transformers'
    /// <c>T5EncoderModel</c> loads such a checkpoint; anything else that does not match is reported by
    /// <see cref="WeightLoader"/> before anything is loaded. (A checkpoint holding <c>shared.weight</c> only,
    /// as <c>save_pretrained</c> writes it, also loads with <see cref="WeightLoader.Load"/> directly.)
    /// </summary>
    public void LoadWeights(ITensorSource source, DeviceContext context, DType dtype)
    {
        RequireSupportedDType(dtype, "the requested weight dtype");
        WeightLoader.Load(this, new T5TiedEmbeddingSource(source), context, dtype,
            name => name.StartsWith("decoder.", StringComparison.Ordinal) || name == "lm_head.weight", "T5 checkpoint");
    }

    /// <summary>
    /// The encoder's <c>last_hidden_state</c> [batch, S, d_model] in the weights' dtype, on their context.
    /// </summary>
    /// <param name="ids">Token ids, row-major [batch, S].</param>
    /// <param name="attentionMask">Row-major [batch, S]: 1 for real tokens, 0 for padding that no token may
    /// attend to (as PixArt's pipelines pass it), or null to attend to every token, padding included (as
    /// SD3 and Flux do). Padded positions are still computed, as in transformers. Each row needs a real
    /// token.</param>
    /// <param name="batchSize">Rows of <paramref name="ids"/>.</param>
    /// <param name="context">The context the weights were loaded on.</param>
    public Tensor Forward(long[] ids, long[]? attentionMask, int batchSize, DeviceContext context)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(context);
        var table = Shared.Weight.Value;
        RequireSupportedDType(table.DType, "the dtype of the loaded weights");
        if (!ReferenceEquals(table.Context, context))
            throw new XDitException(XditStatus.InvalidArgument,
                $"the T5 weights live on another context ({table.Device}) than the one given ({context.Device})");
        if (batchSize <= 0 || ids.Length == 0 || ids.Length % batchSize != 0)
            throw new XDitException(XditStatus.InvalidArgument, $"{ids.Length} ids do not form {batchSize} non-empty rows");
        var length = ids.Length / batchSize;

        using var scope = new TensorScope();
        var keyMask = attentionMask is null ? null : KeyMask(attentionMask, batchSize, length, context);
        var positionBias = Blocks[0].SelfAttention.PositionBias(length);
        var x = Shared.Lookup(ids, batchSize, length);
        foreach (var block in Blocks)
        {
            var next = block.Forward(x, positionBias, keyMask);
            x.Dispose();
            x = next;
        }
        return FinalLayerNorm.Forward(x).MoveToOuterScope();
    }

    /// <summary>The bool key mask [batch, S] of a 0/1 attention mask. transformers adds finfo.min to the
    /// scores of padded keys, which gives them exactly zero weight, as the mask does; a row without any
    /// real token would there attend uniformly to everything, which has no meaning, so it is rejected.</summary>
    static Tensor KeyMask(long[] attentionMask, int batchSize, int length, DeviceContext context)
    {
        if (attentionMask.Length != batchSize * length)
            throw new XDitException(XditStatus.InvalidArgument,
                $"attention mask of {attentionMask.Length} values for ids [{batchSize}, {length}]");
        var keep = new bool[attentionMask.Length];
        for (int b = 0; b < batchSize; b++)
        {
            var any = false;
            for (int s = 0; s < length; s++)
            {
                var value = attentionMask[b * length + s];
                if (value is not (0 or 1))
                    throw new XDitException(XditStatus.InvalidArgument,
                        $"attention mask [{b}, {s}] is {value}; it must be 1 (token) or 0 (padding)");
                keep[b * length + s] = value == 1;
                any |= value == 1;
            }
            if (!any)
                throw new XDitException(XditStatus.InvalidArgument, $"attention mask row {b} has no real token (all {length} values are 0)");
        }
        return Tensor.FromArray(context, keep, batchSize, length);
    }

    static void RequireSupportedDType(DType dtype, string subject)
    {
        if (dtype == DType.F16)
            throw new XDitException(XditStatus.Unsupported,
                $"{subject} is f16, but T5 must not run in f16: its activations exceed f16's range; use f32 or bf16");
        if (dtype is not (DType.F32 or DType.BF16))
            throw new XDitException(XditStatus.InvalidArgument, $"{subject} is {dtype.Name()}; T5 runs in f32 or bf16");
    }
}
