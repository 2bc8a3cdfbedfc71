using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>diffusers' <c>FeedForward</c> with a GELU activation: <c>net.0.proj</c> (with the activation
/// fused into its GEMM), then <c>net.2</c>.</summary>
public sealed class FeedForward : Module
{
    readonly Epilogue _activation;

    public FeedForward(long dim, long innerDim, Epilogue activation, long? outDim = null, bool bias = true)
    {
        _activation = activation;
        Project = Child("net.0.proj", new Linear(dim, innerDim, bias));
        Output = Child("net.2", new Linear(innerDim, outDim ?? dim, bias));
    }

    public Linear Project { get; }
    public Linear Output { get; }

    public Tensor Forward(Tensor x)
    {
        using var hidden = Project.Forward(x, _activation);
        return Output.Forward(hidden);
    }
}
