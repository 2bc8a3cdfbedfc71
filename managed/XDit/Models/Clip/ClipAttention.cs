using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPAttention</c> (eager): biased q, k, v and out projections, scores scaled by
/// head_dim^−0.5, plus the additive mask of <see cref="ClipAttentionBias"/>. The softmax runs in fp32
/// inside the attention op, as transformers' does in float32.
/// </summary>
public sealed class ClipAttention : Module
{
    public ClipAttention(ClipTextConfig config)
    {
        Heads = config.NumAttentionHeads;
        HeadDim = config.HeadDim;
        QProj = Child("q_proj", new Linear(config.HiddenSize, config.HiddenSize));
        KProj = Child("k_proj", new Linear(config.HiddenSize, config.HiddenSize));
        VProj = Child("v_proj", new Linear(config.HiddenSize, config.HiddenSize));
        OutProj = Child("out_proj", new Linear(config.HiddenSize, config.HiddenSize));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OutProj { get; }

    /// <summary>x [B, S, hidden] → [B, S, hidden]. bias: f32 broadcastable to [B, heads, S, S], from
    /// <see cref="ClipAttentionBias"/>.</summary>
    public Tensor Forward(Tensor x, Tensor bias)
    {
        using var scope = new TensorScope();
        var q = SplitHeads(QProj.Forward(x));
        var k = SplitHeads(KProj.Forward(x));
        var v = SplitHeads(VProj.Forward(x));
        var attended = Ops.Attention.ScaledDotProduct(q, k, v, keyMask: null, bias, scale: 1.0 / Math.Sqrt(HeadDim));
        return OutProj.Forward(attended.View(x.Size(0), x.Size(1), (long)Heads * HeadDim)).MoveToOuterScope();
    }

    Tensor SplitHeads(Tensor t) => t.View(t.Size(0), t.Size(1), Heads, HeadDim);
}
