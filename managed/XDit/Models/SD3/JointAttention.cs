using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Models.SD3;

/// <summary>
/// The MMDiT attention of SD3 (diffusers' <c>Attention</c> with <c>JointAttnProcessor2_0</c>): the image
/// and the context streams have their own q, k, v projections (<c>to_q/k/v</c>,
/// <c>add_q/k/v_proj</c>), optional per-head RMS norms on queries and keys (<c>norm_q/k</c>,
/// <c>norm_added_q/k</c>), one attention over the joint sequence <b>[image, context]</b> (image first,
/// unlike Flux), and their own output projections (<c>to_out.0</c>, <c>to_add_out</c>).
/// </summary>
/// <remarks>
/// Projections are written straight into the joint buffers (a GEMM's output may be a slice of a
/// longer sequence), so concatenating the streams costs no copy, and the attention output is read by
/// the two output projections through slices as well.
/// </remarks>
public sealed class JointAttention : Module
{
    /// <summary>diffusers' eps of the q/k RMS norms.</summary>
    const double NormEps = 1e-6;

    public JointAttention(long dim, int heads, int headDim, bool qkRmsNorm, JointContextRole contextRole)
    {
        Heads = heads;
        HeadDim = headDim;
        ContextRole = contextRole;
        var inner = (long)heads * headDim;
        ToQ = Child("to_q", new Linear(dim, inner));
        ToK = Child("to_k", new Linear(dim, inner));
        ToV = Child("to_v", new Linear(dim, inner));
        if (qkRmsNorm)
        {
            NormQ = Child("norm_q", new RmsNorm(headDim, NormEps));
            NormK = Child("norm_k", new RmsNorm(headDim, NormEps));
        }
        if (contextRole != JointContextRole.None)
        {
            // In a KeysAndValues attention, add_q_proj and norm_added_q are in the checkpoint but only feed
            // the discarded context output: they are loaded and never computed.
            AddQ = Child("add_q_proj", new Linear(dim, inner));
            AddK = Child("add_k_proj", new Linear(dim, inner));
            AddV = Child("add_v_proj", new Linear(dim, inner));
            if (qkRmsNorm)
            {
                NormAddedQ = Child("norm_added_q", new RmsNorm(headDim, NormEps));
                NormAddedK = Child("norm_added_k", new RmsNorm(headDim, NormEps));
            }
        }
        ToOut = Child("to_out.0", new Linear(inner, dim));
        if (contextRole == JointContextRole.Joint) ToAddOut = Child("to_add_out", new Linear(inner, dim));
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public JointContextRole ContextRole { get; }
    public Linear ToQ { get; }
    public Linear ToK { get; }
    public Linear ToV { get; }
    public RmsNorm? NormQ { get; }
    public RmsNorm? NormK { get; }
    public Linear? AddQ { get; }
    public Linear? AddK { get; }
    public Linear? AddV { get; }
    public RmsNorm? NormAddedQ { get; }
    public RmsNorm? NormAddedK { get; }
    public Linear ToOut { get; }
    public Linear? ToAddOut { get; }

    /// <summary>
    /// image [B, N, C] and context [B, T, C] (null for <see cref="JointContextRole.None"/>) → the image
    /// output [B, N, C] and, for <see cref="JointContextRole.Joint"/>, the context output [B, T, C].
    /// </summary>
    /// <remarks>With <paramref name="sequence"/>, image and context are local tokens of a longer joint
    /// sequence (a sequence-parallel shard, a PipeFusion band) that the attention spans; a PipeFusion band
    /// that carries no text (<see cref="IJointSequenceAttention.CarriesText"/>) passes no context and gets
    /// none back.</remarks>
    public (Tensor Image, Tensor? Context) Forward(Tensor image, Tensor? context, IJointSequenceAttention? sequence = null)
    {
        var textElsewhere = sequence is { CarriesText: false };
        if ((context is null) != (ContextRole == JointContextRole.None || textElsewhere))
            throw new XDitException(Native.XditStatus.InvalidArgument, context is null
                ? $"a {ContextRole} joint attention needs the context stream"
                : $"this attention takes no context (context role {ContextRole}{(textElsewhere ? ", text kept by the PipeFusion buffer" : "")}), got {context}");
        using var scope = new TensorScope();
        long batch = image.Size(0), imageTokens = image.Size(1), contextTokens = context?.Size(1) ?? 0;
        var jointTokens = imageTokens + contextTokens;

        var keys = Joint(image, batch, jointTokens);
        var values = Joint(image, batch, jointTokens);
        Project(ToK, NormK, image, keys, 0);
        Project(ToV, null, image, values, 0);
        var queries = Joint(image, batch, ContextRole == JointContextRole.Joint && context is not null ? jointTokens : imageTokens);
        Project(ToQ, NormQ, image, queries, 0);
        if (context is not null)
        {
            Project(AddK!, NormAddedK, context, keys, imageTokens);
            Project(AddV!, null, context, values, imageTokens);
            if (ContextRole == JointContextRole.Joint) Project(AddQ!, NormAddedQ, context, queries, imageTokens);
        }

        var (q, k, v) = (SplitHeads(queries), SplitHeads(keys), SplitHeads(values));
        var attended = sequence is null ? Ops.Attention.ScaledDotProduct(q, k, v)
            : ContextRole == JointContextRole.None ? sequence.AttendImage(q, k, v)
            : sequence.Attend(q, k, v);
        var merged = attended.View(batch, queries.Size(1), (long)Heads * HeadDim);
        var imageOut = ToOut.Forward(merged.Narrow(1, 0, imageTokens));
        var contextOut = context is null ? null : ToAddOut?.Forward(merged.Narrow(1, imageTokens, contextTokens));
        return (imageOut.MoveToOuterScope(), contextOut?.MoveToOuterScope());
    }

    /// <summary>An uninitialised joint sequence [B, tokens, H·D] that the projections fill.</summary>
    Tensor Joint(Tensor like, long batch, long tokens) => Tensor.Empty(like.Context, like.DType, batch, tokens, (long)Heads * HeadDim);

    /// <summary>Writes <c>norm(linear(x))</c>, the norm per head, into tokens
    /// [start, start + S) of <paramref name="joint"/>.</summary>
    void Project(Linear linear, RmsNorm? norm, Tensor x, Tensor joint, long start)
    {
        var tokens = x.Size(1);
        using var slot = joint.Narrow(1, start, tokens);
        if (norm is null)
        {
            MatMul.Gemm(x, linear.Weight.Value, linear.Bias?.Value, slot);
            return;
        }
        using var projected = linear.Forward(x);
        using var heads = SplitHeads(projected);
        using var jointHeads = SplitHeads(joint);
        using var slotHeads = jointHeads.Narrow(1, start, tokens);
        Normalization.RmsNorm(heads, norm.Weight?.Value, norm.Eps, slotHeads);
    }

    Tensor SplitHeads(Tensor t) => t.View(t.Size(0), t.Size(1), Heads, HeadDim);
}
