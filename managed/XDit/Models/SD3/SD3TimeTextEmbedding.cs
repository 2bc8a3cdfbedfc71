using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.SD3;

/// <summary>
/// diffusers' <c>CombinedTimestepTextProjEmbeddings</c>: the conditioning of every SD3 block and of the
/// final norm, the sum of the embedded timestep (256-wide sinusoid, cosines first, through
/// <c>timestep_embedder</c>) and of the pooled CLIP embedding through <c>text_embedder</c> (diffusers'
/// <c>PixArtAlphaTextProjection</c> with SiLU, which has <see cref="TimestepEmbedder"/>'s layers:
/// <c>linear_1</c>, SiLU, <c>linear_2</c>).
/// </summary>
public sealed class SD3TimeTextEmbedding : Module
{
    const int SinusoidDim = 256;

    public SD3TimeTextEmbedding(long dim, long pooledProjectionDim)
    {
        TimestepEmbedder = Child("timestep_embedder", new TimestepEmbedder(SinusoidDim, dim));
        TextEmbedder = Child("text_embedder", new TimestepEmbedder(pooledProjectionDim, dim));
    }

    public TimestepEmbedder TimestepEmbedder { get; }
    public TimestepEmbedder TextEmbedder { get; }

    /// <summary>One timestep per sample, f32 [B] (sigma·1000, as the SD3 pipeline passes it), and the pooled
    /// projections [B, pooled] → the conditioning [B, C] in the weights' dtype.</summary>
    public Tensor Forward(Tensor timesteps, Tensor pooledProjections)
    {
        using var scope = new TensorScope();
        var dtype = TimestepEmbedder.Linear1.Weight.Value.DType;
        var sinusoid = TimestepEmbedding.Sinusoidal(timesteps, SinusoidDim, flipSinToCos: true, downscaleFreqShift: 0);
        var time = TimestepEmbedder.Forward(dtype == DType.F32 ? sinusoid : sinusoid.To(dtype));
        var text = TextEmbedder.Forward(pooledProjections);
        return Elementwise.Add(time, text).MoveToOuterScope();
    }
}
