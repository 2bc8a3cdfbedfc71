using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.T5;

/// <summary>
/// transformers' <c>DenseReluDense</c>: <c>T5DenseGatedActDense</c>, <c>wo(act(wi_0 x) · wi_1 x)</c> (T5 v1.1's
/// gated GELU), or <c>T5DenseActDense</c>, <c>wo(act(wi x))</c> (the original T5's ReLU). No biases. GELU
/// and SiLU run fused into the GEMM's epilogue; ReLU is a clamp at zero.
/// </summary>
public sealed class T5FeedForward : Module
{
    readonly T5Activation _activation;

    public T5FeedForward(T5Config config)
    {
        _activation = config.DenseActFn;
        if (config.IsGatedAct)
        {
            Gate = Child("wi_0", new Linear(config.DModel, config.DFf, bias: false));
            Up = Child("wi_1", new Linear(config.DModel, config.DFf, bias: false));
        }
        else
        {
            Up = Child("wi", new Linear(config.DModel, config.DFf, bias: false));
        }
        Down = Child("wo", new Linear(config.DFf, config.DModel, bias: false));
    }

    /// <summary><c>wi_0</c>, whose activation gates <see cref="Up"/>; null in the ungated variant.</summary>
    public Linear? Gate { get; }
    /// <summary><c>wi_1</c> when gated, else <c>wi</c>.</summary>
    public Linear Up { get; }
    public Linear Down { get; }

    public Tensor Forward(Tensor x)
    {
        using var scope = new TensorScope();
        Tensor hidden;
        if (Gate is null)
        {
            hidden = Activated(Up, x);
        }
        else
        {
            hidden = Activated(Gate, x);
            Elementwise.Mul(hidden, Up.Forward(x), hidden);
        }
        return Down.Forward(hidden).MoveToOuterScope();
    }

    Tensor Activated(Linear layer, Tensor x)
    {
        switch (_activation)
        {
            case T5Activation.Relu:
                var linear = layer.Forward(x);
                Elementwise.Clamp(linear, 0, double.PositiveInfinity, linear);
                return linear;
            case T5Activation.GeluTanh: return layer.Forward(x, Epilogue.GeluTanh);
            case T5Activation.GeluErf: return layer.Forward(x, Epilogue.GeluErf);
            case T5Activation.Silu: return layer.Forward(x, Epilogue.Silu);
            default: throw new ArgumentOutOfRangeException(nameof(_activation), _activation, "not a T5 activation");
        }
    }
}
