using XDit.Native;
using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.SD3;

/// <summary>
/// diffusers' <c>SD3Transformer2DModel</c> (Stable Diffusion 3 and 3.5): patch embedding with the stored
/// position table cropped to the latent (<see cref="SD3PatchEmbedding"/>), the timestep-plus-pooled-text
/// conditioning (<see cref="SD3TimeTextEmbedding"/>), the text projection (<c>context_embedder</c>),
/// <see cref="JointTransformerBlock"/>s over the image and text streams (the last one context_pre_only),
/// a modulated final norm (<c>norm_out</c>), <c>proj_out</c> and the unpatchify. Parameter names equal
/// the checkpoint's.
/// </summary>
public sealed class SD3Transformer2DModel : Module
{
    public SD3Transformer2DModel(SD3Config config)
    {
        config.Validate();
        Config = config;
        var dim = config.InnerDim;
        PatchEmbedding = Child("pos_embed", new SD3PatchEmbedding(config));
        TimeTextEmbedding = Child("time_text_embed", new SD3TimeTextEmbedding(dim, config.PooledProjectionDim));
        ContextEmbedder = Child("context_embedder", new Linear(config.JointAttentionDim, config.CaptionProjectionDim));
        Blocks = Enumerable.Range(0, config.NumLayers)
            .Select(i => Child($"transformer_blocks.{i}",
                new JointTransformerBlock(config, contextPreOnly: i == config.NumLayers - 1, config.HasDualAttention(i))))
            .ToArray();
        NormOut = Child("norm_out", new AdaLayerNormContinuous(dim, dim));
        ProjectOut = Child("proj_out", new Linear(dim, (long)config.PatchSize * config.PatchSize * config.OutChannels));
    }

    public SD3Config Config { get; }
    public SD3PatchEmbedding PatchEmbedding { get; }
    public SD3TimeTextEmbedding TimeTextEmbedding { get; }
    public Linear ContextEmbedder { get; }
    public IReadOnlyList<JointTransformerBlock> Blocks { get; }
    public AdaLayerNormContinuous NormOut { get; }
    public Linear ProjectOut { get; }

    /// <summary>
    /// The velocity prediction [B, out_channels, H, W] for latents [B, in_channels, H, W], in the weights'
    /// dtype. Every tensor must be on the weights' context, in their dtype.
    /// </summary>
    /// <param name="latents">Noisy latents; H and W multiples of the patch size, at most
    /// pos_embed_max_size patches a side.</param>
    /// <param name="timesteps">One timestep per sample: sigma·1000, as the SD3 pipeline passes it.</param>
    /// <param name="encoderHiddenStates">Text embeddings [B, T, joint_attention_dim] (CLIP-L | CLIP-G then T5).</param>
    /// <param name="pooledProjections">Pooled CLIP embeddings [B, pooled_projection_dim].</param>
    /// <param name="sequenceParallel">Splits the tokens over this group (the text with the image when the
    /// degree divides it, else replicated behind it); every rank calls with the same inputs and gets the
    /// whole prediction.</param>
    public Tensor Forward(Tensor latents, ReadOnlySpan<float> timesteps, Tensor encoderHiddenStates, Tensor pooledProjections,
        SequenceParallelGroup? sequenceParallel = null)
    {
        ArgumentNullException.ThrowIfNull(latents);
        using var values = Tensor.FromSpan(latents.Context, timesteps, timesteps.Length);
        return Forward(latents, values, encoderHiddenStates, pooledProjections, sequenceParallel);
    }

    /// <summary><see cref="Forward(Tensor, ReadOnlySpan{float}, Tensor, Tensor, SequenceParallelGroup?)"/> with the
    /// timesteps as an f32 tensor [B] on the weights' context (a captured step reads them there).</summary>
    public Tensor Forward(Tensor latents, Tensor timesteps, Tensor encoderHiddenStates, Tensor pooledProjections,
        SequenceParallelGroup? sequenceParallel = null)
    {
        CheckInputs(latents, timesteps, encoderHiddenStates, pooledProjections);
        using var scope = new TensorScope();
        var conditioning = Condition(timesteps, encoderHiddenStates, pooledProjections);
        var gridRows = latents.Size(2) / Config.PatchSize;
        var image = PatchEmbedding.Forward(latents, 0, gridRows);
        var imageTokens = image.Size(1);
        Tensor? context = conditioning.Context;
        var plan = sequenceParallel?.Joint(imageTokens, context.Size(1), textFirst: false);
        if (plan is not null)
        {
            image = plan.ShardImage(image);
            context = plan.ShardText(context);
        }
        (image, _) = RunBlocks(image, context, conditioning, 0, Blocks.Count, _ => plan);
        return Output(image, conditioning, latents.Size(2), latents.Size(3), sequenceParallel).MoveToOuterScope();
    }

    /// <summary>What the blocks of one step are conditioned on: SiLU of the timestep-and-pooled-text embedding
    /// [B, C] (every adaLN projection starts with it) and the projected text [B, T, C].</summary>
    public sealed record Conditioning(Tensor Activated, Tensor Context);

    /// <summary>The conditioning of one step (see <see cref="Forward"/> for the arguments).</summary>
    public Conditioning Condition(ReadOnlySpan<float> timesteps, Tensor encoderHiddenStates, Tensor pooledProjections)
    {
        using var values = Tensor.FromSpan(pooledProjections.Context, timesteps, timesteps.Length);
        return Condition(values, encoderHiddenStates, pooledProjections);
    }

    /// <summary>The conditioning of one step, the timesteps as an f32 tensor [B].</summary>
    public Conditioning Condition(Tensor timesteps, Tensor encoderHiddenStates, Tensor pooledProjections)
    {
        using var scope = new TensorScope();
        var activated = Elementwise.Unary(UnaryOp.Silu, TimeTextEmbedding.Forward(timesteps, pooledProjections));
        var context = ContextEmbedder.Forward(encoderHiddenStates);
        return new Conditioning(activated.MoveToOuterScope(), context.MoveToOuterScope());
    }

    /// <summary>Blocks [<paramref name="first"/>, <paramref name="end"/>) over the image [B, N, C] and text
    /// [B, T, C] streams (the text null where a PipeFusion band carries none); block l attends through
    /// <paramref name="attention"/>(l) when that is not null. The text comes back null after the last block.</summary>
    public (Tensor Image, Tensor? Context) RunBlocks(Tensor image, Tensor? context, Conditioning conditioning, int first, int end,
        Func<int, IJointSequenceAttention?> attention)
    {
        for (int l = first; l < end; l++)
        {
            var (nextImage, nextContext) = Blocks[l].Forward(image, context, conditioning.Activated, attention(l));
            if (l > first)
            {
                image.Dispose();
                context?.Dispose();
            }
            (image, context) = (nextImage, nextContext);
        }
        return (image, context);
    }

    /// <summary>The final norm, the projection and the unpatchify: image tokens [B, s, C] → the prediction
    /// [B, out_channels, height, width] of those latent rows (with sequence parallelism the shards are
    /// gathered first).</summary>
    public Tensor Output(Tensor image, Conditioning conditioning, long height, long width, SequenceParallelGroup? sequenceParallel = null)
    {
        using var scope = new TensorScope();
        var tokens = ProjectOut.Forward(NormOut.Forward(image, conditioning.Activated));
        if (sequenceParallel is not null) tokens = sequenceParallel.Gather(tokens, height / Config.PatchSize * (width / Config.PatchSize));
        return Layout.Unpatchify(tokens, (int)height, (int)width, Config.PatchSize, Config.OutChannels).MoveToOuterScope();
    }

    void CheckInputs(Tensor latents, Tensor timesteps, Tensor encoderHiddenStates, Tensor pooledProjections)
    {
        ArgumentNullException.ThrowIfNull(latents);
        ArgumentNullException.ThrowIfNull(encoderHiddenStates);
        ArgumentNullException.ThrowIfNull(pooledProjections);
        var weights = ProjectOut.Weight.Value;
        var p = Config.PatchSize;
        foreach (var (name, tensor) in new[] { ("latents", latents), ("encoderHiddenStates", encoderHiddenStates), ("pooledProjections", pooledProjections) })
        {
            if (!ReferenceEquals(tensor.Context, weights.Context))
                throw Invalid($"{name} ({Describe(tensor)}) lives on another context ({tensor.Device}) than the weights ({weights.Device})");
            if (tensor.DType != weights.DType)
                throw Invalid($"{name} ({Describe(tensor)}) must have the weights' dtype {weights.DType.Name()}");
        }
        if (latents.Rank != 4 || latents.Size(1) != Config.InChannels)
            throw Invalid($"latents ({Describe(latents)}) must be [B, {Config.InChannels}, H, W]");
        long batch = latents.Size(0), height = latents.Size(2), width = latents.Size(3);
        if (height % p != 0 || width % p != 0)
            throw Invalid($"latents ({Describe(latents)}): height and width must be multiples of the patch size {p}");
        var max = Config.PosEmbedMaxSize;
        if (height / p > max || width / p > max)
            throw Invalid($"latents ({Describe(latents)}): the {height / p}×{width / p} patch grid exceeds the position table's {max}×{max} (pos_embed_max_size)");
        ArgumentNullException.ThrowIfNull(timesteps);
        if (timesteps.Rank != 1 || timesteps.Size(0) != batch)
            throw Invalid($"timesteps {timesteps.ShapeString} for a batch of {batch} (latents {Describe(latents)}): one per sample");
        if (encoderHiddenStates.Rank != 3 || encoderHiddenStates.Size(0) != batch || encoderHiddenStates.Size(2) != Config.JointAttentionDim)
            throw Invalid($"encoderHiddenStates ({Describe(encoderHiddenStates)}) must be [{batch}, T, {Config.JointAttentionDim}]");
        if (encoderHiddenStates.Size(1) == 0)
            throw Invalid($"encoderHiddenStates ({Describe(encoderHiddenStates)}) has no tokens");
        if (pooledProjections.Rank != 2 || pooledProjections.Size(0) != batch || pooledProjections.Size(1) != Config.PooledProjectionDim)
            throw Invalid($"pooledProjections ({Describe(pooledProjections)}) must be [{batch}, {Config.PooledProjectionDim}]");
    }

    static XDitException Invalid(string message) => new(XditStatus.InvalidArgument, message);

    static string Describe(Tensor t) => $"{t.DType.Name()} {t.ShapeString}";
}
