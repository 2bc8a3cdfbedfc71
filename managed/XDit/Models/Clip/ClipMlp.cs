using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPMLP</c>: <c>fc2(act(fc1(x)))</c>, both biased. GELU (erf or tanh) runs fused into
/// fc1's GEMM. There is no native quick GELU, so x·sigmoid(1.702x) is composed in place as
/// silu(1.702x) / 1.702, which is the same function: three pointwise passes over fc1's output.
/// </summary>
public sealed class ClipMlp : Module
{
    /// <summary>The slope of CLIP's sigmoid approximation of GELU.</summary>
    const double QuickGeluSlope = 1.702;

    readonly ClipActivation _activation;

    public ClipMlp(ClipTextConfig config)
    {
        _activation = config.HiddenAct;
        Fc1 = Child("fc1", new Linear(config.HiddenSize, config.IntermediateSize));
        Fc2 = Child("fc2", new Linear(config.IntermediateSize, config.HiddenSize));
    }

    public Linear Fc1 { get; }
    public Linear Fc2 { get; }

    /// <summary>x [..., hidden] → [..., hidden].</summary>
    public Tensor Forward(Tensor x)
    {
        using var hidden = Activated(x);
        return Fc2.Forward(hidden);
    }

    Tensor Activated(Tensor x)
    {
        switch (_activation)
        {
            case ClipActivation.GeluErf: return Fc1.Forward(x, Epilogue.GeluErf);
            case ClipActivation.GeluTanh: return Fc1.Forward(x, Epilogue.GeluTanh);
            case ClipActivation.QuickGelu:
                var h = Fc1.Forward(x);
                try
                {
                    Elementwise.Affine(h, QuickGeluSlope, 0, h);
                    Elementwise.Unary(UnaryOp.Silu, h, h);
                    Elementwise.Affine(h, 1 / QuickGeluSlope, 0, h);
                    return h;
                }
                catch
                {
                    h.Dispose();
                    throw;
                }
            default: throw new ArgumentOutOfRangeException(nameof(_activation), _activation, "not a CLIP activation");
        }
    }
}
