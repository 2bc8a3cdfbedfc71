using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// Flux's <c>time_text_embed</c>: diffusers' <c>CombinedTimestepTextProjEmbeddings</c> (FLUX.1-schnell), or
/// <c>CombinedTimestepGuidanceTextProjEmbeddings</c> when built with a guidance embedder (FLUX.1-dev). The
/// timestep (and the guidance scale) go through the 256-channel sinusoid (cosines first, no frequency
/// shift) and an MLP each; the pooled text embedding through <c>text_embedder</c> (linear, SiLU, linear);
/// the conditioning is their sum.
/// </summary>
public sealed class CombinedTimestepTextProjEmbeddings : Module
{
    const int SinusoidDim = 256;

    public CombinedTimestepTextProjEmbeddings(long embeddingDim, long pooledProjectionDim, bool withGuidance)
    {
        TimestepEmbedder = Child("timestep_embedder", new TimestepEmbedder(SinusoidDim, embeddingDim));
        if (withGuidance) GuidanceEmbedder = Child("guidance_embedder", new TimestepEmbedder(SinusoidDim, embeddingDim));
        TextEmbedder1 = Child("text_embedder.linear_1", new Linear(pooledProjectionDim, embeddingDim));
        TextEmbedder2 = Child("text_embedder.linear_2", new Linear(embeddingDim, embeddingDim));
    }

    public TimestepEmbedder TimestepEmbedder { get; }
    public TimestepEmbedder? GuidanceEmbedder { get; }
    public Linear TextEmbedder1 { get; }
    public Linear TextEmbedder2 { get; }

    /// <summary>The conditioning embedding [B, C].</summary>
    /// <param name="timesteps">One value per sample, f32 [B], already as the model scales it (sigma · 1000).</param>
    /// <param name="guidance">One value per sample, f32 [B] (scale · 1000) with a guidance embedder, else null.</param>
    /// <param name="pooledProjections">[B, pooled_projection_dim], in the weights' dtype.</param>
    public Tensor Forward(Tensor timesteps, Tensor? guidance, Tensor pooledProjections)
    {
        if ((guidance is null) != (GuidanceEmbedder is null))
            throw new XDitException(Native.XditStatus.InvalidArgument, GuidanceEmbedder is null
                ? "this embedding has no guidance embedder, but a guidance scale was given"
                : "this embedding has a guidance embedder and needs a guidance scale");
        using var scope = new TensorScope();
        var embedded = TimestepEmbedder.Forward(Sinusoid(timesteps, pooledProjections));
        if (GuidanceEmbedder is not null)
            embedded = Elementwise.Add(embedded, GuidanceEmbedder.Forward(Sinusoid(guidance!, pooledProjections)));
        var pooled = TextEmbedder2.Forward(TextEmbedder1.Forward(pooledProjections, Epilogue.Silu));
        return Elementwise.Add(embedded, pooled).MoveToOuterScope();
    }

    /// <summary>diffusers' <c>time_proj</c>, computed in f32 and cast to the pooled embedding's dtype.</summary>
    static Tensor Sinusoid(Tensor values, Tensor like)
    {
        var projection = TimestepEmbedding.Sinusoidal(values, SinusoidDim, flipSinToCos: true, downscaleFreqShift: 0);
        return projection.DType == like.DType ? projection : projection.To(like.DType);
    }
}
