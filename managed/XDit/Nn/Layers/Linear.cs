using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>y = epilogue(x·Wᵀ + b) with PyTorch's weight layout [out, in].</summary>
public sealed class Linear : Module
{
    public Linear(long inFeatures, long outFeatures, bool bias = true)
    {
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        Weight = Param("weight", outFeatures, inFeatures);
        Bias = bias ? Param("bias", outFeatures) : null;
    }

    public long InFeatures { get; }
    public long OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>x [..., in] → [..., out], with an activation fused into the GEMM's epilogue.</summary>
    public Tensor Forward(Tensor x, Epilogue epilogue = Epilogue.None) => MatMul.Gemm(x, Weight.Value, Bias?.Value, epilogue);
}
