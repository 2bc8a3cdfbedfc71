using XDit.Native;
using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// diffusers' <c>FluxTransformer2DModel</c> (FLUX.1-dev and -schnell): packed image tokens and T5 text
/// tokens are embedded to the hidden size (<c>x_embedder</c>, <c>context_embedder</c>), conditioned on
/// timestep, pooled CLIP embedding and, for guidance-distilled models, the guidance scale
/// (<c>time_text_embed</c>); they pass the double-stream <see cref="FluxTransformerBlock"/>s side by side,
/// then the single-stream <see cref="FluxSingleTransformerBlock"/>s as one [text, image] sequence, with a
/// rotary embedding of their position ids in every attention. The image tokens leave through a modulated
/// norm (<c>norm_out</c>) and <c>proj_out</c>. Parameter names equal the checkpoint's.
/// </summary>
public sealed class FluxTransformer2DModel : Module
{
    public FluxTransformer2DModel(FluxConfig config)
    {
        config.Validate();
        Config = config;
        var dim = config.InnerDim;
        XEmbedder = Child("x_embedder", new Linear(config.InChannels, dim));
        TimeTextEmbed = Child("time_text_embed", new CombinedTimestepTextProjEmbeddings(dim, config.PooledProjectionDim, config.GuidanceEmbeds));
        ContextEmbedder = Child("context_embedder", new Linear(config.JointAttentionDim, dim));
        TransformerBlocks = Enumerable.Range(0, config.NumLayers)
            .Select(i => Child($"transformer_blocks.{i}", new FluxTransformerBlock(config))).ToArray();
        SingleTransformerBlocks = Enumerable.Range(0, config.NumSingleLayers)
            .Select(i => Child($"single_transformer_blocks.{i}", new FluxSingleTransformerBlock(config))).ToArray();
        NormOut = Child("norm_out", new AdaLayerNormContinuous(dim, dim));
        ProjOut = Child("proj_out", new Linear(dim, (long)config.PatchSize * config.PatchSize * config.OutChannels));
    }

    public FluxConfig Config { get; }
    public Linear XEmbedder { get; }
    public CombinedTimestepTextProjEmbeddings TimeTextEmbed { get; }
    public Linear ContextEmbedder { get; }
    public IReadOnlyList<FluxTransformerBlock> TransformerBlocks { get; }
    public IReadOnlyList<FluxSingleTransformerBlock> SingleTransformerBlocks { get; }
    public AdaLayerNormContinuous NormOut { get; }
    public Linear ProjOut { get; }

    /// <summary>
    /// The velocity prediction [B, N, p·p·out_channels] for the packed latents, in the weights' dtype.
    /// </summary>
    /// <param name="hiddenStates">Packed latents [B, N, in_channels] (<see cref="Layout.FluxPack"/>).</param>
    /// <param name="encoderHiddenStates">T5 hidden states [B, T, joint_attention_dim].</param>
    /// <param name="pooledProjections">Pooled CLIP embedding [B, pooled_projection_dim].</param>
    /// <param name="timesteps">Sigma in [0, 1] per sample (the pipeline's timestep / 1000); the model
    /// scales it by 1000, as diffusers does, in the weights' dtype.</param>
    /// <param name="guidance">The guidance scale per sample for a guidance-distilled model
    /// (<see cref="FluxConfig.GuidanceEmbeds"/>, FLUX.1-dev), scaled by 1000 like the timestep; null for
    /// FLUX.1-schnell.</param>
    /// <param name="imgIds">Position ids of the image tokens, row-major [N, 3] (<see cref="FluxPositionIds.Image"/>).</param>
    /// <param name="txtIds">Position ids of the text tokens, row-major [T, 3] (<see cref="FluxPositionIds.Text"/>).</param>
    /// <param name="sequenceParallel">Splits the tokens over this group (the text with the image when the
    /// degree divides it, else replicated in front of it); every rank calls with the same inputs and gets
    /// the whole prediction.</param>
    public Tensor Forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections,
        float[] timesteps, float[]? guidance, float[] imgIds, float[] txtIds, SequenceParallelGroup? sequenceParallel = null)
    {
        ArgumentNullException.ThrowIfNull(hiddenStates);
        ArgumentNullException.ThrowIfNull(timesteps);
        using var timestepValues = Tensor.FromArray(hiddenStates.Context, timesteps, timesteps.Length);
        using var guidanceValues = guidance is null ? null : Tensor.FromArray(hiddenStates.Context, guidance, guidance.Length);
        return Forward(hiddenStates, encoderHiddenStates, pooledProjections, timestepValues, guidanceValues, imgIds, txtIds, sequenceParallel);
    }

    /// <summary><see cref="Forward(Tensor, Tensor, Tensor, float[], float[], float[], float[], SequenceParallelGroup?)"/>
    /// with the timesteps (and guidance) as f32 tensors [B] on the weights' context (a captured step reads them there).</summary>
    public Tensor Forward(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections,
        Tensor timesteps, Tensor? guidance, float[] imgIds, float[] txtIds, SequenceParallelGroup? sequenceParallel = null)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        ArgumentNullException.ThrowIfNull(imgIds);
        ArgumentNullException.ThrowIfNull(txtIds);
        CheckInputs(hiddenStates, encoderHiddenStates, pooledProjections, timesteps, guidance, imgIds, txtIds);
        long textTokens = encoderHiddenStates.Size(1), imageTokens = hiddenStates.Size(1);
        using var scope = new TensorScope();

        var plan = sequenceParallel?.Joint(imageTokens, textTokens, textFirst: true);
        var conditioning = Condition(encoderHiddenStates, pooledProjections, timesteps, guidance, imgIds, txtIds);
        var image = XEmbedder.Forward(plan is null ? hiddenStates : plan.ShardImage(hiddenStates));
        var (text, cos, sin) = (conditioning.Text, conditioning.Cos, conditioning.Sin);
        if (plan is not null)
        {
            text = plan.ShardText(text);
            // This rank's rows of the rotary tables, in its local [text, image] order.
            Tensor Local(Tensor table) => Layout.Cat(0, plan.ShardText(table.Narrow(0, 0, textTokens), dim: 0),
                plan.ShardImage(table.Narrow(0, textTokens, imageTokens), dim: 0));
            (cos, sin) = (Local(cos), Local(sin));
        }
        var joint = RunBlocks(Layout.Cat(1, text, image), text.Size(1), conditioning.Activated, cos, sin, 0, Layers, _ => plan);
        var tokens = Output(joint, text.Size(1), conditioning.Activated);
        return (sequenceParallel is null ? tokens : sequenceParallel.Gather(tokens, imageTokens)).MoveToOuterScope();
    }

    /// <summary>The double-stream blocks, then the single-stream ones: the layers PipeFusion splits.</summary>
    public int Layers => TransformerBlocks.Count + SingleTransformerBlocks.Count;

    /// <summary>What the blocks of one step are conditioned on: SiLU of the timestep/guidance/pooled-text
    /// embedding [B, C], the projected text [B, T, C], and the rotary tables [T + N, D] of the whole joint
    /// sequence (f32).</summary>
    public sealed record Conditioning(Tensor Activated, Tensor Text, Tensor Cos, Tensor Sin);

    /// <summary>The conditioning of one step (see <see cref="Forward"/> for the arguments).</summary>
    public Conditioning Condition(Tensor encoderHiddenStates, Tensor pooledProjections, float[] timesteps, float[]? guidance,
        float[] imgIds, float[] txtIds)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        using var timestepValues = Tensor.FromArray(pooledProjections.Context, timesteps, timesteps.Length);
        using var guidanceValues = guidance is null ? null : Tensor.FromArray(pooledProjections.Context, guidance, guidance.Length);
        return Condition(encoderHiddenStates, pooledProjections, timestepValues, guidanceValues, imgIds, txtIds);
    }

    /// <summary>The conditioning of one step, the timesteps (and guidance) as f32 tensors [B].</summary>
    public Conditioning Condition(Tensor encoderHiddenStates, Tensor pooledProjections, Tensor timesteps, Tensor? guidance,
        float[] imgIds, float[] txtIds)
    {
        var dtype = XEmbedder.Weight.Value.DType;
        using var scope = new TensorScope();
        var embedded = TimeTextEmbed.Forward(TimesThousand(timesteps, dtype), guidance is null ? null : TimesThousand(guidance, dtype), pooledProjections);
        var activated = Elementwise.Unary(UnaryOp.Silu, embedded);
        var text = ContextEmbedder.Forward(encoderHiddenStates);
        var (cos, sin) = PositionTables(imgIds, txtIds).ToTensors(encoderHiddenStates.Context);
        return new Conditioning(activated.MoveToOuterScope(), text.MoveToOuterScope(), cos.MoveToOuterScope(), sin.MoveToOuterScope());
    }

    /// <summary>
    /// Layers [<paramref name="first"/>, <paramref name="end"/>) — double-stream blocks, then single-stream
    /// ones — over a local joint sequence x [B, text + image, C], text first (<paramref name="textTokens"/>
    /// of them, 0 for a PipeFusion band that carries none), with the rotary rows [text + image, D] of those
    /// tokens; layer l attends through <paramref name="attention"/>(l) when that is not null. Returns the
    /// joint sequence in the same layout.
    /// </summary>
    public Tensor RunBlocks(Tensor x, long textTokens, Tensor activated, Tensor cos, Tensor sin, int first, int end,
        Func<int, IJointSequenceAttention?> attention)
    {
        var (headCos, headSin) = (cos.Unsqueeze(1), sin.Unsqueeze(1)); // [S, 1, D]: the same angles for every head
        var doubleEnd = Math.Min(end, TransformerBlocks.Count);
        if (first < doubleEnd)
        {
            Tensor? text = textTokens > 0 ? x.Narrow(1, 0, textTokens) : null;
            var image = x.Narrow(1, textTokens, x.Size(1) - textTokens);
            for (int l = first; l < doubleEnd; l++)
            {
                var (nextText, nextImage) = TransformerBlocks[l].Forward(text, image, activated, headCos, headSin, attention(l));
                text?.Dispose();
                image.Dispose();
                (text, image) = (nextText, nextImage);
            }
            x = text is null ? image : Layout.Cat(1, text, image);
            if (text is not null)
            {
                text.Dispose();
                image.Dispose();
            }
        }
        for (int l = Math.Max(first, TransformerBlocks.Count); l < end; l++)
        {
            var next = SingleTransformerBlocks[l - TransformerBlocks.Count].Forward(x, activated, headCos, headSin, attention(l));
            if (l > first) x.Dispose();
            x = next;
        }
        return x;
    }

    /// <summary>The final norm and projection of the image tokens of a local joint sequence [B, text + image, C]
    /// (<paramref name="textTokens"/> text tokens first): the velocity [B, image, p·p·out_channels].</summary>
    public Tensor Output(Tensor x, long textTokens, Tensor activated)
    {
        using var scope = new TensorScope();
        var normed = NormOut.Forward(x.Narrow(1, textTokens, x.Size(1) - textTokens), activated);
        return ProjOut.Forward(normed).MoveToOuterScope();
    }

    /// <summary>The rotary tables [T + N, head_dim] of the joint sequence: <c>FluxPosEmbed</c> of
    /// <c>cat(txt_ids, img_ids)</c>, text first as the tokens are.</summary>
    public RotaryTables PositionTables(float[] imgIds, float[] txtIds)
    {
        ArgumentNullException.ThrowIfNull(imgIds);
        ArgumentNullException.ThrowIfNull(txtIds);
        return RotaryEmbedding.Flux([.. txtIds, .. imgIds], Config.AxesDimsRope);
    }

    /// <summary>diffusers' <c>timestep.to(hidden_states.dtype) * 1000</c>: rounded to the dtype, multiplied,
    /// rounded again. In bf16 sigma 0.75 becomes the timestep 752, which moves the fast frequencies of the
    /// sinusoid by whole radians, as it does in diffusers' bf16 runs.</summary>
    internal static Tensor TimesThousand(Tensor values, DType dtype)
    {
        if (dtype == DType.F32) return Elementwise.Affine(values, 1000);
        using var rounded = values.To(dtype);
        using var scaled = Elementwise.Affine(rounded, 1000);
        return scaled.To(DType.F32);
    }

    void CheckInputs(Tensor hiddenStates, Tensor encoderHiddenStates, Tensor pooledProjections,
        Tensor timesteps, Tensor? guidance, float[] imgIds, float[] txtIds)
    {
        static XDitException Invalid(string message) => new(XditStatus.InvalidArgument, message);
        var weights = XEmbedder.Weight.Value;
        foreach (var (name, tensor) in new[]
                 {
                     ("hidden_states", hiddenStates), ("encoder_hidden_states", encoderHiddenStates),
                     ("pooled_projections", pooledProjections),
                 })
        {
            ArgumentNullException.ThrowIfNull(tensor, name);
            if (tensor.DType != weights.DType || !ReferenceEquals(tensor.Context, weights.Context))
                throw Invalid($"{name} ({tensor.DType.Name()} {tensor.ShapeString} on {tensor.Device}) must have the weights' dtype " +
                              $"and context ({weights.DType.Name()} on {weights.Device})");
        }
        if (hiddenStates.Rank != 3 || hiddenStates.Size(2) != Config.InChannels)
            throw Invalid($"hidden_states {hiddenStates.ShapeString} must be packed latents [B, tokens, {Config.InChannels}]");
        var batch = hiddenStates.Size(0);
        if (encoderHiddenStates.Rank != 3 || encoderHiddenStates.Size(0) != batch || encoderHiddenStates.Size(2) != Config.JointAttentionDim)
            throw Invalid($"encoder_hidden_states {encoderHiddenStates.ShapeString} must be [{batch}, tokens, {Config.JointAttentionDim}] " +
                          $"for hidden_states {hiddenStates.ShapeString}");
        if (pooledProjections.Rank != 2 || pooledProjections.Size(0) != batch || pooledProjections.Size(1) != Config.PooledProjectionDim)
            throw Invalid($"pooled_projections {pooledProjections.ShapeString} must be [{batch}, {Config.PooledProjectionDim}]");
        if (timesteps.Rank != 1 || timesteps.Size(0) != batch)
            throw Invalid($"timesteps {timesteps.ShapeString} for a batch of {batch}: one per sample");
        if (Config.GuidanceEmbeds && guidance is null)
            throw Invalid("this model embeds the guidance scale (guidance_embeds, FLUX.1-dev): a guidance value per sample is required");
        if (!Config.GuidanceEmbeds && guidance is not null)
            throw Invalid("this model has no guidance embedder (guidance_embeds is false, FLUX.1-schnell): pass guidance = null");
        if (guidance is not null && (guidance.Rank != 1 || guidance.Size(0) != batch))
            throw Invalid($"guidance {guidance.ShapeString} for a batch of {batch}: one per sample");
        var columns = Config.AxesDimsRope.Count;
        if (imgIds.Length != hiddenStates.Size(1) * columns)
            throw Invalid($"img_ids has {imgIds.Length} values, not [{hiddenStates.Size(1)}, {columns}] for hidden_states {hiddenStates.ShapeString}");
        if (txtIds.Length != encoderHiddenStates.Size(1) * columns)
            throw Invalid($"txt_ids has {txtIds.Length} values, not [{encoderHiddenStates.Size(1)}, {columns}] for encoder_hidden_states {encoderHiddenStates.ShapeString}");
    }
}
