using XDit.Native;
using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextModel</c> (the CLIP-L text encoder of SD3 and Flux) or, with a projection,
/// <c>CLIPTextModelWithProjection</c> (SD3's and SDXL's CLIP-L and bigG): the
/// <see cref="ClipTextTransformer"/> under <c>text_model</c> and, for the latter, the bias-free
/// <c>text_projection</c> [projection_dim, hidden] applied to the pooled output. Parameter names equal the
/// checkpoint's.
/// </summary>
/// <remarks>Runs in f32, f16 (as the pipelines load CLIP) or bf16, with fp32 arithmetic inside every op;
/// the attention mask stays f32.</remarks>
public sealed class ClipTextModel : Module
{
    public ClipTextModel(ClipTextConfig config, bool withProjection = false)
    {
        config.Validate();
        Config = config;
        TextModel = Child("text_model", new ClipTextTransformer(config));
        if (withProjection)
            TextProjection = Child("text_projection", new Linear(config.HiddenSize, config.ProjectionDim, bias: false));
    }

    public ClipTextConfig Config { get; }
    public ClipTextTransformer TextModel { get; }
    /// <summary><c>text_projection</c>, or null for a plain <c>CLIPTextModel</c>.</summary>
    public Linear? TextProjection { get; }

    /// <summary>
    /// Loads a transformers checkpoint in <paramref name="dtype"/> (f32, f16 or bf16). As transformers'
    /// loader does, it skips what the model does not use: the <c>text_model.embeddings.position_ids</c>
    /// buffer that checkpoints written before transformers 4.31 hold, the vision tower, projection and
    /// <c>logit_scale</c> of a full <c>CLIPModel</c> checkpoint, and <c>text_projection.weight</c> when
    /// the model has no projection. Anything else that does not match is reported by
    /// <see cref="WeightLoader"/> before anything is loaded.
    /// </summary>
    public void LoadWeights(ITensorSource source, DeviceContext context, DType dtype)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
            throw new XDitException(XditStatus.InvalidArgument, $"the requested weight dtype is {dtype.Name()}; CLIP runs in f32, f16 or bf16");
        WeightLoader.Load(this, source, context, dtype, IsUnusedByTheTextModel, "CLIP checkpoint");
    }

    bool IsUnusedByTheTextModel(string name) =>
        name == "text_model.embeddings.position_ids"
        || name.StartsWith("vision_model.", StringComparison.Ordinal)
        || name is "visual_projection.weight" or "logit_scale"
        || (TextProjection is null && name == "text_projection.weight");

    /// <summary>
    /// Encodes a batch of prompts. Padded positions are computed too, as in transformers.
    /// </summary>
    /// <param name="ids">Token ids, row-major [batch, S] with S ≤ max_position_embeddings.</param>
    /// <param name="batchSize">Rows of <paramref name="ids"/>.</param>
    /// <param name="context">The context the weights were loaded on.</param>
    /// <param name="outputHiddenStates">Also return every layer's output
    /// (<see cref="ClipTextOutput.HiddenStates"/>).</param>
    /// <param name="attentionMask">Row-major [batch, S]: 1 for tokens, 0 for padding no token may attend
    /// to, or null for the causal mask alone, as the SD3, SDXL and Flux pipelines call CLIP. With right
    /// padding a mask changes only the padded positions (a token never sees later ones).</param>
    public ClipTextOutput Forward(long[] ids, int batchSize, DeviceContext context, bool outputHiddenStates = false,
        long[]? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(context);
        var table = TextModel.Embeddings.TokenEmbedding.Weight.Value;
        if (!ReferenceEquals(table.Context, context))
            throw new XDitException(XditStatus.InvalidArgument,
                $"the CLIP weights live on another context ({table.Device}) than the one given ({context.Device})");
        if (batchSize <= 0 || ids.Length == 0 || ids.Length % batchSize != 0)
            throw new XDitException(XditStatus.InvalidArgument, $"{ids.Length} ids do not form {batchSize} non-empty rows");
        var length = ids.Length / batchSize;

        using var scope = new TensorScope();
        var output = TextModel.Forward(ids, batchSize, length, attentionMask, outputHiddenStates);
        if (TextProjection is not null) output = output.WithTextEmbeds(TextProjection.Forward(output.PooledOutput));
        return output.MoveToOuterScope();
    }
}
