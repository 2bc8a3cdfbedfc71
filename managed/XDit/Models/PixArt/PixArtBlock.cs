using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.PixArt;

/// <summary>
/// One PixArt transformer block (diffusers' <c>BasicTransformerBlock</c> with <c>ada_norm_single</c>):
/// self-attention and feed-forward, each behind a LayerNorm modulated by shift/scale and added back
/// through a gate, with un-normalised cross-attention to the caption in between. The six modulation
/// vectors are the block's <c>scale_shift_table</c> plus the model's timestep embedding.
/// </summary>
public sealed class PixArtBlock : Module
{
    readonly double _eps;

    public PixArtBlock(PixArtConfig config)
    {
        var dim = config.InnerDim;
        _eps = config.NormEps;
        ScaleShiftTable = Param("scale_shift_table", 6, dim);
        SelfAttention = Child("attn1", new MultiHeadAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim));
        CrossAttention = Child("attn2", new MultiHeadAttention(dim, config.NumAttentionHeads, config.AttentionHeadDim));
        FeedForward = Child("ff", new FeedForward(dim, 4L * dim, Epilogue.GeluTanh));
    }

    public Parameter ScaleShiftTable { get; }
    public MultiHeadAttention SelfAttention { get; }
    public MultiHeadAttention CrossAttention { get; }
    public FeedForward FeedForward { get; }

    /// <summary>x [B, S, C]; timestep [B, 6·C] (the adaLN-single output); caption [B, T, C]; captionMask
    /// bool [B, T] or null. With <paramref name="sequence"/>, x is part of a longer sequence (a
    /// sequence-parallel shard, a PipeFusion band) that the self-attention spans; everything else is per token.</summary>
    public Tensor Forward(Tensor x, Tensor timestep, Tensor caption, Tensor? captionMask, ISequenceAttention? sequence = null)
    {
        using var scope = new TensorScope();
        var dim = x.Size(2);
        // [B, 6, C]: shift, scale, gate of the attention, then of the feed-forward.
        var modulation = Elementwise.Add(ScaleShiftTable.Value.Unsqueeze(0), timestep.View(timestep.Size(0), 6, dim));
        Tensor Row(int i) => modulation.Narrow(1, i, 1);

        var normed = Normalization.LayerNorm(x, null, null, _eps, Row(1), Row(0));
        var attended = sequence is null ? SelfAttention.Forward(normed) : SelfAttention.Forward(normed, sequence);
        x = Elementwise.AddMul(x, Row(2), attended);

        var crossed = CrossAttention.Forward(x, caption, captionMask);
        x = Elementwise.Add(x, crossed);

        normed = Normalization.LayerNorm(x, null, null, _eps, Row(4), Row(3));
        var fed = FeedForward.Forward(normed);
        return Elementwise.AddMul(x, Row(5), fed).MoveToOuterScope();
    }
}
