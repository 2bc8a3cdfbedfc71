using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>
/// diffusers' <c>Attention</c> with <c>FluxAttnProcessor2_0</c> (<c>attn</c> of both Flux blocks): biased
/// q, k, v projections, per-head RMS norms of q and k (eps 1e-6), the rotary embedding of the joint
/// sequence on q and k (interleaved pairs), and scaled dot-product attention over every token.
/// </summary>
/// <remarks>
/// The double-stream form (<c>jointWithText</c>) projects the text tokens with their own weights
/// (<c>add_q_proj</c>, <c>add_k_proj</c>, <c>add_v_proj</c>, <c>norm_added_q</c>, <c>norm_added_k</c>),
/// attends over [text, image] (text first, as in every Flux sequence) and projects each part back
/// (<c>to_add_out</c>, <c>to_out.0</c>). The single-stream form (diffusers' <c>pre_only</c>) gets the joint
/// sequence already concatenated and returns the attention without an output projection: the block's
/// <c>proj_out</c> does that together with its MLP.
/// </remarks>
public sealed class FluxAttention : Module
{
    const double Eps = 1e-6;

    public FluxAttention(long dim, int heads, int headDim, bool jointWithText)
    {
        Heads = heads;
        HeadDim = headDim;
        var inner = (long)heads * headDim;
        ToQ = Child("to_q", new Linear(dim, inner));
        ToK = Child("to_k", new Linear(dim, inner));
        ToV = Child("to_v", new Linear(dim, inner));
        NormQ = Child("norm_q", new RmsNorm(headDim, Eps));
        NormK = Child("norm_k", new RmsNorm(headDim, Eps));
        if (!jointWithText) return;
        AddQProj = Child("add_q_proj", new Linear(dim, inner));
        AddKProj = Child("add_k_proj", new Linear(dim, inner));
        AddVProj = Child("add_v_proj", new Linear(dim, inner));
        NormAddedQ = Child("norm_added_q", new RmsNorm(headDim, Eps));
        NormAddedK = Child("norm_added_k", new RmsNorm(headDim, Eps));
        ToOut = Child("to_out.0", new Linear(inner, dim));
        ToAddOut = Child("to_add_out", new Linear(inner, dim));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public Linear ToQ { get; }
    public Linear ToK { get; }
    public Linear ToV { get; }
    public RmsNorm NormQ { get; }
    public RmsNorm NormK { get; }
    public Linear? AddQProj { get; }
    public Linear? AddKProj { get; }
    public Linear? AddVProj { get; }
    public RmsNorm? NormAddedQ { get; }
    public RmsNorm? NormAddedK { get; }
    public Linear? ToOut { get; }
    public Linear? ToAddOut { get; }

    /// <summary>Single-stream: the joint sequence x [B, S, C] → the attention [B, S, H·D], before any
    /// output projection.</summary>
    /// <param name="cos">Rotary cosines [S, 1, D] of the joint sequence (f32 or x's dtype).</param>
    /// <param name="sin">Rotary sines, as <paramref name="cos"/>.</param>
    /// <param name="sequence">When x is the local [text, image] of a longer joint sequence (a
    /// sequence-parallel shard, a PipeFusion band): the attention over all of it.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, IJointSequenceAttention? sequence = null)
    {
        using var scope = new TensorScope();
        var q = NormQ.Forward(SplitHeads(ToQ.Forward(x)));
        var k = NormK.Forward(SplitHeads(ToK.Forward(x)));
        var v = SplitHeads(ToV.Forward(x));
        return Attend(q, k, v, cos, sin, sequence).MoveToOuterScope();
    }

    /// <summary>Double-stream: text [B, T, C] and image [B, N, C] attend together as [text, image];
    /// each part comes back through its own output projection.</summary>
    /// <param name="text">The text stream; null for a PipeFusion band that carries none (its image attends
    /// to the text keys and values the step's first band left; no text comes back).</param>
    /// <param name="cos">Rotary cosines [T + N, 1, D] of the local joint sequence.</param>
    /// <param name="sin">Rotary sines, as <paramref name="cos"/>.</param>
    /// <param name="sequence">When text and image are local tokens of a longer joint sequence: the
    /// attention over all of it.</param>
    public (Tensor? Text, Tensor Image) Forward(Tensor? text, Tensor image, Tensor cos, Tensor sin, IJointSequenceAttention? sequence = null)
    {
        if (AddQProj is null)
            throw new InvalidOperationException("a single-stream (pre-only) attention has no text projections; call Forward(x, cos, sin)");
        if ((text is null) != sequence is { CarriesText: false })
            throw new XDitException(Native.XditStatus.InvalidArgument, text is null
                ? "the double-stream attention needs the text stream" : "this PipeFusion band carries no text; pass none");
        using var scope = new TensorScope();
        if (text is null)
        {
            var imageQ = NormQ.Forward(SplitHeads(ToQ.Forward(image)));
            var imageK = NormK.Forward(SplitHeads(ToK.Forward(image)));
            var imageAttended = Attend(imageQ, imageK, SplitHeads(ToV.Forward(image)), cos, sin, sequence);
            return (null, ToOut!.Forward(imageAttended).MoveToOuterScope());
        }
        var q = Layout.Cat(1, NormAddedQ!.Forward(SplitHeads(AddQProj.Forward(text))), NormQ.Forward(SplitHeads(ToQ.Forward(image))));
        var k = Layout.Cat(1, NormAddedK!.Forward(SplitHeads(AddKProj!.Forward(text))), NormK.Forward(SplitHeads(ToK.Forward(image))));
        var v = Layout.Cat(1, SplitHeads(AddVProj!.Forward(text)), SplitHeads(ToV.Forward(image)));
        var attended = Attend(q, k, v, cos, sin, sequence);
        var textOut = ToAddOut!.Forward(attended.Narrow(1, 0, text.Size(1)));
        var imageOut = ToOut!.Forward(attended.Narrow(1, text.Size(1), image.Size(1)));
        return (textOut.MoveToOuterScope(), imageOut.MoveToOuterScope());
    }

    /// <summary>Rotates q and k in place (both are this call's own tensors) and attends: [B, S, H·D].</summary>
    Tensor Attend(Tensor q, Tensor k, Tensor v, Tensor cos, Tensor sin, IJointSequenceAttention? sequence)
    {
        Rotary.Apply(q, cos, sin, RotaryPairing.Interleaved, q);
        Rotary.Apply(k, cos, sin, RotaryPairing.Interleaved, k);
        var attended = sequence is null ? Attention.ScaledDotProduct(q, k, v) : sequence.Attend(q, k, v);
        return attended.View(q.Size(0), q.Size(1), (long)Heads * HeadDim);
    }

    Tensor SplitHeads(Tensor t) => t.View(t.Size(0), t.Size(1), Heads, HeadDim);
}
