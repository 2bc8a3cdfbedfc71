using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>diffusers' <c>TimestepEmbedding</c> module: <c>linear_1</c>, SiLU, <c>linear_2</c>, applied to a
/// sinusoidal projection (<see cref="Embeddings.TimestepEmbedding"/>).</summary>
public sealed class TimestepEmbedder : Module
{
    public TimestepEmbedder(long inChannels, long timeEmbedDim, long? outDim = null)
    {
        Linear1 = Child("linear_1", new Linear(inChannels, timeEmbedDim));
        Linear2 = Child("linear_2", new Linear(timeEmbedDim, outDim ?? timeEmbedDim));
    }

    public Linear Linear1 { get; }
    public Linear Linear2 { get; }

    public Tensor Forward(Tensor projection)
    {
        using var hidden = Linear1.Forward(projection, Epilogue.Silu);
        return Linear2.Forward(hidden);
    }
}
