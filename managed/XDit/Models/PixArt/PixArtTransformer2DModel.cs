using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.PixArt;

/// <summary>
/// diffusers' <c>PixArtTransformer2DModel</c> (PixArt-α and PixArt-Σ): patch embedding with a 2-D sin-cos
/// position table for any latent size, adaLN-single timestep conditioning (plus PixArt-α's resolution
/// and aspect-ratio embeddings), caption projection, <see cref="PixArtBlock"/>s, a modulated final norm and
/// the unpatchify. Parameter names equal the checkpoint's.
/// </summary>
public sealed class PixArtTransformer2DModel : Module
{
    const int SinusoidDim = 256;

    public PixArtTransformer2DModel(PixArtConfig config)
    {
        Config = config;
        var dim = config.InnerDim;
        var p = config.PatchSize;
        PatchProjection = Child("pos_embed.proj", new Conv2d(config.InChannels, dim, p, p));
        TimestepEmbedder = Child("adaln_single.emb.timestep_embedder", new TimestepEmbedder(SinusoidDim, dim));
        if (config.UseAdditionalConditions)
        {
            ResolutionEmbedder = Child("adaln_single.emb.resolution_embedder", new TimestepEmbedder(SinusoidDim, dim / 3));
            AspectRatioEmbedder = Child("adaln_single.emb.aspect_ratio_embedder", new TimestepEmbedder(SinusoidDim, dim / 3));
        }
        TimestepModulation = Child("adaln_single.linear", new Linear(dim, 6L * dim));
        CaptionProjection1 = Child("caption_projection.linear_1", new Linear(config.CaptionChannels, dim));
        CaptionProjection2 = Child("caption_projection.linear_2", new Linear(dim, dim));
        Blocks = Enumerable.Range(0, config.NumLayers).Select(i => Child($"transformer_blocks.{i}", new PixArtBlock(config))).ToArray();
        FinalScaleShift = Param("scale_shift_table", 2, dim);
        ProjectOut = Child("proj_out", new Linear(dim, (long)p * p * config.OutChannels));
    }

    public PixArtConfig Config { get; }
    public Conv2d PatchProjection { get; }
    public TimestepEmbedder TimestepEmbedder { get; }
    public TimestepEmbedder? ResolutionEmbedder { get; }
    public TimestepEmbedder? AspectRatioEmbedder { get; }
    public Linear TimestepModulation { get; }
    public Linear CaptionProjection1 { get; }
    public Linear CaptionProjection2 { get; }
    public IReadOnlyList<PixArtBlock> Blocks { get; }
    public Parameter FinalScaleShift { get; }
    public Linear ProjectOut { get; }

    /// <summary>
    /// The noise (and learned variance) prediction [B, out_channels, H, W] for latents [B, in_channels, H, W].
    /// </summary>
    /// <param name="timesteps">One diffusion timestep per sample.</param>
    /// <param name="caption">Caption embeddings [B, T, caption_channels].</param>
    /// <param name="captionMask">bool [B, T], true for real tokens; null attends to every token.</param>
    /// <param name="resolution">PixArt-α only: [height, width] in pixels per sample, row-major [B, 2].</param>
    /// <param name="aspectRatio">PixArt-α only: height / width per sample.</param>
    /// <param name="sequenceParallel">Splits the image tokens over this group (every rank calls with the
    /// same inputs and gets the whole prediction); the cross-attention to the caption stays local.</param>
    public Tensor Forward(Tensor latents, ReadOnlySpan<float> timesteps, Tensor caption, Tensor? captionMask,
        ReadOnlySpan<float> resolution = default, ReadOnlySpan<float> aspectRatio = default, SequenceParallelGroup? sequenceParallel = null)
    {
        using var values = Tensor.FromSpan(latents.Context, timesteps, timesteps.Length);
        return Forward(latents, values, caption, captionMask, resolution, aspectRatio, sequenceParallel);
    }

    /// <summary><see cref="Forward(Tensor, ReadOnlySpan{float}, Tensor, Tensor?, ReadOnlySpan{float}, ReadOnlySpan{float}, SequenceParallelGroup?)"/>
    /// with the timesteps as an f32 tensor [B] on the weights' context (a captured step reads them there).</summary>
    public Tensor Forward(Tensor latents, Tensor timesteps, Tensor caption, Tensor? captionMask,
        ReadOnlySpan<float> resolution = default, ReadOnlySpan<float> aspectRatio = default, SequenceParallelGroup? sequenceParallel = null)
    {
        long height = latents.Size(2), width = latents.Size(3);
        var p = Config.PatchSize;
        using var scope = new TensorScope();
        var conditioning = Condition(timesteps, caption, captionMask, resolution, aspectRatio);
        var gridRows = height / p;
        var x = Embed(latents, 0, gridRows, sequenceParallel);
        var attention = sequenceParallel?.Attention(gridRows * (width / p));
        x = RunBlocks(x, conditioning, 0, Blocks.Count, _ => attention);
        return Output(x, conditioning, height, width, sequenceParallel).MoveToOuterScope();
    }

    /// <summary>What every block of one step is conditioned on: the adaLN-single output [B, 6·C], the
    /// timestep embedding [B, C] (the final norm's), the projected caption [B, T, C] and its key mask.</summary>
    public sealed record Conditioning(Tensor Timestep, Tensor EmbeddedTimestep, Tensor Caption, Tensor? CaptionMask);

    /// <summary>The conditioning of one step (see <see cref="Forward"/> for the arguments).</summary>
    public Conditioning Condition(ReadOnlySpan<float> timesteps, Tensor caption, Tensor? captionMask,
        ReadOnlySpan<float> resolution = default, ReadOnlySpan<float> aspectRatio = default)
    {
        using var values = Tensor.FromSpan(caption.Context, timesteps, timesteps.Length);
        return Condition(values, caption, captionMask, resolution, aspectRatio);
    }

    /// <summary>The conditioning of one step, the timesteps as an f32 tensor [B].</summary>
    public Conditioning Condition(Tensor timesteps, Tensor caption, Tensor? captionMask,
        ReadOnlySpan<float> resolution = default, ReadOnlySpan<float> aspectRatio = default)
    {
        var batch = caption.Size(0);
        if (timesteps.Rank != 1 || timesteps.Size(0) != batch)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"timesteps {timesteps.ShapeString} for a batch of {batch}: one per sample");
        var (timestep, embedded) = ConditionOnTimestep(caption.Context, batch, timesteps, resolution, aspectRatio);
        var captionStates = CaptionProjection2.Forward(CaptionProjection1.Forward(caption, Epilogue.GeluTanh));
        return new Conditioning(timestep, embedded, captionStates, captionMask);
    }

    /// <summary>
    /// Patch embedding as a GEMM over patchified latents (the conv's weight read as [C, in·p·p]), plus the
    /// 2-D sin-cos table: the tokens [B, S, C] of <paramref name="latents"/>, which are token rows
    /// <paramref name="gridRowStart"/> .. of a latent <paramref name="gridRows"/> token rows high (a PipeFusion
    /// band; the whole latent otherwise); with sequence parallelism, this rank's shard of them.
    /// </summary>
    public Tensor Embed(Tensor latents, long gridRowStart, long gridRows, SequenceParallelGroup? sequenceParallel = null)
    {
        var context = latents.Context;
        var p = Config.PatchSize;
        var dim = Config.InnerDim;
        if (latents.Size(2) % p != 0 || latents.Size(3) % p != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"latents {latents.ShapeString}: height and width must be multiples of the patch size {p}");
        using var scope = new TensorScope();
        var patches = Layout.Patchify(latents, p);
        if (sequenceParallel is not null) patches = sequenceParallel.Shard(patches);
        var weight = PatchProjection.Weight.Value.View(dim, (long)Config.InChannels * p * p);
        var projected = MatMul.Gemm(patches, weight, PatchProjection.Bias!.Value);
        int gridWidth = (int)(latents.Size(3) / p);
        // Only this band's rows of the whole grid's table.
        var table = SinCosPositionEmbedding.TwoDimensional(context, dim, (int)gridRows, gridWidth,
            (double)Config.SampleSize / p, Config.InterpolationScale, (int)gridRowStart, (int)(latents.Size(2) / p));
        if (sequenceParallel is not null) table = sequenceParallel.Shard(table, dim: 0);
        var typedTable = table.DType == projected.DType ? table : table.To(projected.DType);
        return Elementwise.Add(projected, typedTable.Unsqueeze(0)).MoveToOuterScope();
    }

    /// <summary>Blocks [<paramref name="first"/>, <paramref name="end"/>) over the tokens x [B, s, C]; block
    /// l's self-attention goes through <paramref name="attention"/>(l) when that is not null (a
    /// sequence-parallel shard, a PipeFusion band).</summary>
    public Tensor RunBlocks(Tensor x, Conditioning conditioning, int first, int end, Func<int, ISequenceAttention?> attention)
    {
        for (int l = first; l < end; l++)
        {
            var next = Blocks[l].Forward(x, conditioning.Timestep, conditioning.Caption, conditioning.CaptionMask, attention(l));
            if (l > first) x.Dispose();
            x = next;
        }
        return x;
    }

    /// <summary>The final norm (modulated by scale_shift_table + the timestep embedding), the projection and
    /// the unpatchify: tokens [B, s, C] → the prediction [B, out_channels, height, width] of those latent
    /// rows (with sequence parallelism the shards are gathered first).</summary>
    public Tensor Output(Tensor x, Conditioning conditioning, long height, long width, SequenceParallelGroup? sequenceParallel = null)
    {
        using var scope = new TensorScope();
        var p = Config.PatchSize;
        // [B, 2, C] = shift, scale.
        var modulation = Elementwise.Add(FinalScaleShift.Value.Unsqueeze(0), conditioning.EmbeddedTimestep.Unsqueeze(1));
        x = Normalization.LayerNorm(x, null, null, Config.NormEps, modulation.Narrow(1, 1, 1), modulation.Narrow(1, 0, 1));
        var tokens = ProjectOut.Forward(x);
        if (sequenceParallel is not null) tokens = sequenceParallel.Gather(tokens, height / p * (width / p));
        return Layout.Unpatchify(tokens, (int)height, (int)width, p, Config.OutChannels).MoveToOuterScope();
    }

    /// <summary>adaLN-single: the timestep (plus PixArt-α's size conditions) embedded to [B, C], and its
    /// SiLU-then-linear projection to the blocks' six modulation vectors [B, 6·C].</summary>
    (Tensor Timestep, Tensor Embedded) ConditionOnTimestep(DeviceContext context, long batch, Tensor timesteps,
        ReadOnlySpan<float> resolution, ReadOnlySpan<float> aspectRatio)
    {
        var dtype = TimestepModulation.Weight.Value.DType;
        Tensor InDType(Tensor t) => dtype == DType.F32 ? t : t.To(dtype);
        Tensor Sinusoid(ReadOnlySpan<float> values) =>
            InDType(TimestepEmbedding.Sinusoidal(context, values, SinusoidDim, flipSinToCos: true, downscaleFreqShift: 0));
        var embedded = TimestepEmbedder.Forward(InDType(TimestepEmbedding.Sinusoidal(timesteps, SinusoidDim, flipSinToCos: true, downscaleFreqShift: 0)));
        if (Config.UseAdditionalConditions)
        {
            if (resolution.Length != 2 * batch || aspectRatio.Length != batch)
                throw new XDitException(Native.XditStatus.InvalidArgument,
                    $"PixArt-α needs a resolution [height, width] and an aspect ratio per sample; got {resolution.Length} and {aspectRatio.Length} values for a batch of {batch}");
            var sizes = ResolutionEmbedder!.Forward(Sinusoid(resolution)).View(batch, -1);
            var ratios = AspectRatioEmbedder!.Forward(Sinusoid(aspectRatio)).View(batch, -1);
            embedded = Elementwise.Add(embedded, Layout.Cat(1, sizes, ratios));
        }
        var silu = Elementwise.Unary(UnaryOp.Silu, embedded);
        return (TimestepModulation.Forward(silu), embedded);
    }
}
