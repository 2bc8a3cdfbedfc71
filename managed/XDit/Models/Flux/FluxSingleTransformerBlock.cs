using XDit.Parallel;
using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// diffusers' <c>FluxSingleTransformerBlock</c>, the single-stream block over the joint [text, image]
/// sequence: one modulated LayerNorm feeds both the attention (<see cref="FluxAttention"/> without an
/// output projection) and a GELU-tanh MLP (<c>proj_mlp</c>, 4× wide) side by side; <c>proj_out</c> maps
/// their concatenation back to the hidden size, and the result is added through the gate.
/// </summary>
public sealed class FluxSingleTransformerBlock : Module
{
    public FluxSingleTransformerBlock(FluxConfig config)
    {
        var dim = config.InnerDim;
        var mlpDim = 4L * dim;
        Norm = Child("norm", new AdaLayerNormZeroSingle(dim));
        ProjMlp = Child("proj_mlp", new Linear(dim, mlpDim));
        Attention = Child("attn", new FluxAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim, jointWithText: false));
        ProjOut = Child("proj_out", new Linear(dim + mlpDim, dim));
    }

    public AdaLayerNormZeroSingle Norm { get; }
    public Linear ProjMlp { get; }
    public FluxAttention Attention { get; }
    public Linear ProjOut { get; }

    /// <summary>The joint sequence x [B, T + N, C] → [B, T + N, C].</summary>
    /// <param name="activatedConditioning">SiLU of the conditioning embedding [B, C].</param>
    /// <param name="cos">Rotary cosines [T + N, 1, D] of the joint sequence.</param>
    /// <param name="sin">Rotary sines, as <paramref name="cos"/>.</param>
    /// <param name="sequence">When x is the local [text, image] of a longer joint sequence (a
    /// sequence-parallel shard, a PipeFusion band): the attention over all of it.</param>
    public Tensor Forward(Tensor x, Tensor activatedConditioning, Tensor cos, Tensor sin, IJointSequenceAttention? sequence = null)
    {
        using var scope = new TensorScope();
        var (normed, gate) = Norm.Forward(x, activatedConditioning);
        var mlp = ProjMlp.Forward(normed, Epilogue.GeluTanh);
        var attended = Attention.Forward(normed, cos, sin, sequence);
        var projected = ProjOut.Forward(Layout.Cat(2, attended, mlp));
        return FluxHalfPrecision.ClampToF16Range(Elementwise.AddMul(x, gate, projected)).MoveToOuterScope();
    }
}
