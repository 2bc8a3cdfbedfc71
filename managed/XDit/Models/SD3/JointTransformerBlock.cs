using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.SD3;

/// <summary>
/// diffusers' <c>JointTransformerBlock</c> (MMDiT): the image and the context stream each pass an
/// adaLN-Zero norm (<c>norm1</c>, <c>norm1_context</c>), meet in one <see cref="JointAttention"/>, and
/// each add the gated result, then a gated GELU-tanh feed-forward behind a modulated norm (<c>ff</c>,
/// <c>ff_context</c>). SD3.5-medium's dual-attention blocks add a second, image-only self-attention
/// (<c>attn2</c>) whose input is the block's input under its own shift and scale. The last block is
/// diffusers' <c>context_pre_only</c>: its context only lends keys and values, through an
/// <see cref="AdaLayerNormContinuous"/>, and the block returns no context.
/// </summary>
public sealed class JointTransformerBlock : Module
{
    public JointTransformerBlock(SD3Config config, bool contextPreOnly, bool dualAttention)
    {
        var dim = config.InnerDim;
        ContextPreOnly = contextPreOnly;
        Norm1 = Child("norm1", new AdaLayerNormZero(dim, dualAttention));
        if (contextPreOnly) FinalContextNorm = Child("norm1_context", new AdaLayerNormContinuous(dim, dim));
        else ContextNorm = Child("norm1_context", new AdaLayerNormZero(dim));
        Attention = Child("attn", new JointAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim, config.QkRmsNorm,
            contextPreOnly ? JointContextRole.KeysAndValues : JointContextRole.Joint));
        if (dualAttention)
            SecondAttention = Child("attn2", new JointAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim, config.QkRmsNorm,
                JointContextRole.None));
        FeedForward = Child("ff", new FeedForward(dim, 4L * dim, Epilogue.GeluTanh));
        if (!contextPreOnly) ContextFeedForward = Child("ff_context", new FeedForward(dim, 4L * dim, Epilogue.GeluTanh));
    }

    public bool ContextPreOnly { get; }
    public AdaLayerNormZero Norm1 { get; }
    /// <summary>The context's adaLN-Zero (every block but the last).</summary>
    public AdaLayerNormZero? ContextNorm { get; }
    /// <summary>The context's continuous norm (the last, context_pre_only block).</summary>
    public AdaLayerNormContinuous? FinalContextNorm { get; }
    public JointAttention Attention { get; }
    /// <summary>SD3.5-medium's image self-attention (dual-attention blocks only).</summary>
    public JointAttention? SecondAttention { get; }
    public FeedForward FeedForward { get; }
    public FeedForward? ContextFeedForward { get; }

    /// <summary>
    /// image [B, N, C], context [B, T, C] and the model's conditioning after SiLU [B, C] → the new image
    /// stream and, except in the context_pre_only block (null there), the new context stream. With
    /// <paramref name="sequence"/> both streams are local tokens of a longer joint sequence; a PipeFusion
    /// band that carries no text passes a null context and gets null back.
    /// </summary>
    public (Tensor Image, Tensor? Context) Forward(Tensor image, Tensor? context, Tensor activatedConditioning,
        IJointSequenceAttention? sequence = null)
    {
        using var scope = new TensorScope();
        var modulation = Norm1.Modulation(activatedConditioning);
        Tensor Row(int i) => modulation.Narrow(1, i, 1);
        var contextModulation = context is null ? null : ContextNorm?.Modulation(activatedConditioning);
        Tensor ContextRow(int i) => contextModulation!.Narrow(1, i, 1);

        var normedImage = Modulate(image, Row(AdaLayerNormZero.ScaleMsa), Row(AdaLayerNormZero.ShiftMsa));
        var normedContext = context is null ? null
            : FinalContextNorm?.Forward(context, activatedConditioning)
              ?? Modulate(context, ContextRow(AdaLayerNormZero.ScaleMsa), ContextRow(AdaLayerNormZero.ShiftMsa));
        var (imageAttention, contextAttention) = Attention.Forward(normedImage, normedContext, sequence);
        var x = Elementwise.AddMul(image, Row(AdaLayerNormZero.GateMsa), imageAttention);

        if (SecondAttention is not null)
        {
            // The block's input, not x: diffusers' SD35AdaLayerNormZeroX modulates the one norm twice.
            var normedSecond = Modulate(image, Row(AdaLayerNormZero.ScaleMsa2), Row(AdaLayerNormZero.ShiftMsa2));
            var (second, _) = SecondAttention.Forward(normedSecond, null, sequence);
            x = Elementwise.AddMul(x, Row(AdaLayerNormZero.GateMsa2), second);
        }

        var fed = FeedForward.Forward(Modulate(x, Row(AdaLayerNormZero.ScaleMlp), Row(AdaLayerNormZero.ShiftMlp)));
        x = Elementwise.AddMul(x, Row(AdaLayerNormZero.GateMlp), fed);
        if (ContextPreOnly || context is null) return (x.MoveToOuterScope(), null);

        var c = Elementwise.AddMul(context!, ContextRow(AdaLayerNormZero.GateMsa), contextAttention!);
        var contextFed = ContextFeedForward!.Forward(Modulate(c, ContextRow(AdaLayerNormZero.ScaleMlp), ContextRow(AdaLayerNormZero.ShiftMlp)));
        c = Elementwise.AddMul(c, ContextRow(AdaLayerNormZero.GateMlp), contextFed);
        return (x.MoveToOuterScope(), c.MoveToOuterScope());
    }

    /// <summary>The parameter-free layer norm of the adaLN-Zero, <c>·(1 + scale) + shift</c> fused.</summary>
    static Tensor Modulate(Tensor x, Tensor scale, Tensor shift) =>
        Normalization.LayerNorm(x, null, null, AdaLayerNormZero.Eps, scale, shift);
}
