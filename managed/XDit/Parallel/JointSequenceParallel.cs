using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// How one MMDiT pass (SD3, Flux) lays its image and text streams over a sequence-parallel group, as
/// xDiT's joint strategies do: the image tokens are always sharded; the text tokens are sharded with
/// them when the degree divides their count, and otherwise every rank holds all of them (replicated)
/// and their keys and values join the attention once — in front of the image for Flux, behind it for
/// SD3, where the single-rank joint sequence has them. Each rank's local joint sequence is
/// [text, image] or [image, text] in that same order.
/// </summary>
public sealed class JointSequenceParallel : IJointSequenceAttention
{
    internal JointSequenceParallel(SequenceParallelGroup group, long imageTokens, long textTokens, bool textFirst)
    {
        Group = group;
        ImageTokens = imageTokens;
        TextTokens = textTokens;
        TextFirst = textFirst;
        TextReplicated = textTokens % group.Degree != 0;
        LocalTextTokens = TextReplicated ? textTokens : textTokens / group.Degree;
        Joint = TextReplicated ? group.Attention(imageTokens) : group.Attention(imageTokens, LocalTextTokens, textFirst);
        ImageOnly = TextReplicated ? Joint : group.Attention(imageTokens);
    }

    public SequenceParallelGroup Group { get; }
    public long ImageTokens { get; }
    public long TextTokens { get; }
    public bool TextFirst { get; }

    /// <summary>The degree does not divide the text: every rank holds all of it.</summary>
    public bool TextReplicated { get; }

    /// <summary>Text tokens in each rank's local sequence.</summary>
    public long LocalTextTokens { get; }

    /// <summary>Image tokens in each rank's local sequence (padding included).</summary>
    public long LocalImageTokens => Group.ShardLength(ImageTokens);

    SequenceParallelAttention Joint { get; }
    SequenceParallelAttention ImageOnly { get; }

    /// <summary>Every rank's local sequence holds text (all of it, or its share).</summary>
    public bool CarriesText => true;

    /// <summary>This rank's text tokens of <paramref name="text"/> (all of them when replicated).</summary>
    public Tensor ShardText(Tensor text, int dim = 1) => TextReplicated ? text.Contiguous() : Group.Shard(text, dim);

    /// <summary>This rank's image tokens of <paramref name="image"/>, zero-padded.</summary>
    public Tensor ShardImage(Tensor image, int dim = 1) => Group.Shard(image, dim);

    /// <summary>
    /// Joint attention over the local sequences: k, v [B, local text + local image, H, D] in this pass's
    /// order; q the same tokens, or the image tokens alone (SD3's last block, whose text only lends keys and
    /// values). Returns the attention of q's tokens [B, q tokens, H, Dv].
    /// </summary>
    public Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        if (!TextReplicated) return Joint.Attend(q, k, v);
        long text = TextTokens, image = k.Size(1) - text;
        Tensor Text(Tensor x) => x.Narrow(1, TextFirst ? 0 : image, text);
        Tensor Image(Tensor x) => x.Narrow(1, TextFirst ? text : 0, image);
        var textQueries = q.Size(1) == k.Size(1);
        var (imageOut, textOut) = Joint.Attend(textQueries ? Image(q) : q, Image(k), Image(v),
            new ReplicatedTokens(textQueries ? Text(q) : null, Text(k), Text(v), TextFirst));
        if (textOut is null) return imageOut;
        using (imageOut)
        using (textOut)
            return TextFirst ? Layout.Cat(1, textOut, imageOut) : Layout.Cat(1, imageOut, textOut);
    }

    /// <summary>Self-attention of the image tokens alone (SD3.5's dual-attention blocks).</summary>
    public Tensor AttendImage(Tensor q, Tensor k, Tensor v) => ImageOnly.Attend(q, k, v);
}
