using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// diffusers' <c>FluxTransformerBlock</c>, the double-stream (MMDiT) block: text and image tokens keep
/// separate weights (<c>norm1</c>/<c>ff</c> for the image, <c>norm1_context</c>/<c>ff_context</c> for the
/// text) but attend jointly (<see cref="FluxAttention"/>). Each stream adds its attention and its
/// GELU-tanh feed-forward back through gates, the feed-forward behind a second modulated LayerNorm.
/// </summary>
public sealed class FluxTransformerBlock : Module
{
    public FluxTransformerBlock(FluxConfig config)
    {
        var dim = config.InnerDim;
        Norm1 = Child("norm1", new AdaLayerNormZero(dim));
        Norm1Context = Child("norm1_context", new AdaLayerNormZero(dim));
        Attention = Child("attn", new FluxAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim, jointWithText: true));
        FeedForward = Child("ff", new FeedForward(dim, 4L * dim, Epilogue.GeluTanh));
        FeedForwardContext = Child("ff_context", new FeedForward(dim, 4L * dim, Epilogue.GeluTanh));
    }

    public AdaLayerNormZero Norm1 { get; }
    public AdaLayerNormZero Norm1Context { get; }
    public FluxAttention Attention { get; }
    public FeedForward FeedForward { get; }
    public FeedForward FeedForwardContext { get; }

    /// <summary>text [B, T, C] and image [B, N, C] → both streams after the block.</summary>
    /// <param name="activatedConditioning">SiLU of the conditioning embedding [B, C].</param>
    /// <param name="cos">Rotary cosines [T + N, 1, D] of the joint sequence.</param>
    /// <param name="sin">Rotary sines, as <paramref name="cos"/>.</param>
    /// <param name="sequence">When text and image are local tokens of a longer joint sequence (a
    /// sequence-parallel shard, a PipeFusion band): the attention over all of it. A PipeFusion band that
    /// carries no text passes a null text and gets null back.</param>
    public (Tensor? Text, Tensor Image) Forward(Tensor? text, Tensor image, Tensor activatedConditioning, Tensor cos, Tensor sin,
        IJointSequenceAttention? sequence = null)
    {
        using var scope = new TensorScope();
        var imageRows = Norm1.Modulation(activatedConditioning);
        var imageNormed = Modulated(image, imageRows, AdaLayerNormZero.ScaleMsa, AdaLayerNormZero.ShiftMsa);
        if (text is null)
        {
            var (_, alone) = Attention.Forward(null, imageNormed, cos, sin, sequence);
            return (null, Residuals(image, imageRows, alone, FeedForward).MoveToOuterScope());
        }
        var textRows = Norm1Context.Modulation(activatedConditioning);
        var textNormed = Modulated(text, textRows, AdaLayerNormZero.ScaleMsa, AdaLayerNormZero.ShiftMsa);
        var (textAttended, imageAttended) = Attention.Forward(textNormed, imageNormed, cos, sin, sequence);
        image = Residuals(image, imageRows, imageAttended, FeedForward);
        text = FluxHalfPrecision.ClampToF16Range(Residuals(text, textRows, textAttended!, FeedForwardContext));
        return (text.MoveToOuterScope(), image.MoveToOuterScope());
    }

    /// <summary>The affine-free layer norm of x modulated by rows <paramref name="scale"/> and
    /// <paramref name="shift"/> of <paramref name="rows"/> [B, 6, C].</summary>
    static Tensor Modulated(Tensor x, Tensor rows, int scale, int shift) =>
        Normalization.LayerNorm(x, null, null, AdaLayerNormZero.Eps, rows.Narrow(1, scale, 1), rows.Narrow(1, shift, 1));

    /// <summary>One stream's gated attention residual, then its gated feed-forward behind the modulated norm.</summary>
    static Tensor Residuals(Tensor x, Tensor rows, Tensor attended, FeedForward feedForward)
    {
        x = Elementwise.AddMul(x, rows.Narrow(1, AdaLayerNormZero.GateMsa, 1), attended);
        var normed = Modulated(x, rows, AdaLayerNormZero.ScaleMlp, AdaLayerNormZero.ShiftMlp);
        return Elementwise.AddMul(x, rows.Narrow(1, AdaLayerNormZero.GateMlp, 1), feedForward.Forward(normed));
    }
}
