using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The ranks that share one sequence (USP): <see cref="Ulysses"/> groups of contiguous ranks exchange
/// heads for tokens with all-to-alls, <see cref="Ring"/> groups pass keys and values around. Sequence-
/// parallel rank r = ring rank · Ulysses degree + Ulysses rank holds tokens r·s .. r·s + s − 1 of every
/// sharded sequence, s = ⌈S / degree⌉; the last ranks' shards are padded with zero tokens, which
/// <see cref="SequenceParallelAttention"/> masks out of every attention.
/// </summary>
public sealed class SequenceParallelGroup
{
    internal SequenceParallelGroup(ICommunicator all, ICommunicator ulysses, ICommunicator ring)
    {
        All = all;
        Ulysses = ulysses;
        Ring = ring;
    }

    /// <summary>Every rank of the sequence, in sequence-parallel rank order.</summary>
    public ICommunicator All { get; }
    public ICommunicator Ulysses { get; }
    public ICommunicator Ring { get; }

    public int Degree => All.Size;
    public int Rank => All.Rank;

    /// <summary>The tokens of a sequence of <paramref name="tokens"/> that each rank holds (padding included).</summary>
    public long ShardLength(long tokens) => (tokens + Degree - 1) / Degree;

    /// <summary>Which of rank <paramref name="rank"/>'s <see cref="ShardLength"/> tokens are real (the rest are padding).</summary>
    public bool[] ShardValidity(long tokens, int rank)
    {
        var length = ShardLength(tokens);
        return Enumerable.Range(0, (int)length).Select(i => rank * length + i < tokens).ToArray();
    }

    /// <summary>This rank's shard of <paramref name="x"/> along <paramref name="dim"/> (a sequence of
    /// x.Size(dim) tokens), zero-padded to <see cref="ShardLength"/>.</summary>
    public Tensor Shard(Tensor x, int dim = 1)
    {
        ArgumentNullException.ThrowIfNull(x);
        var tokens = x.Size(dim);
        var length = ShardLength(tokens);
        var start = Math.Min(Rank * length, tokens);
        var real = Math.Min(length, tokens - start);
        using var slice = x.Narrow(dim, start, real);
        if (real == length) return slice.Contiguous();
        var shape = x.Shape.ToArray();
        shape[dim] = length;
        var shard = Tensor.Zeros(x.Context, x.DType, shape);
        if (real > 0)
        {
            using var target = shard.Narrow(dim, 0, real);
            Ops.Elementwise.Copy(slice, target);
        }
        return shard;
    }

    /// <summary>The whole sequence [B, <paramref name="tokens"/>, ...] from every rank's shard [B, s, ...]
    /// (collective), the padding dropped.</summary>
    public Tensor Gather(Tensor shard, long tokens)
    {
        ArgumentNullException.ThrowIfNull(shard);
        if (shard.Rank < 2 || shard.Size(1) != ShardLength(tokens))
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"a shard of a {tokens}-token sequence over {Degree} ranks must be [B, {ShardLength(tokens)}, ...]; got {shard.ShapeString}");
        using var scope = new TensorScope();
        var gathered = Tensor.Empty(shard.Context, shard.DType, [Degree, .. shard.Shape.ToArray()]);
        All.AllGather(shard.Contiguous(), gathered);
        var rest = shard.Shape[2..].ToArray();
        var dims = Enumerable.Range(0, gathered.Rank).ToArray();
        (dims[0], dims[1]) = (1, 0);
        var sequence = gathered.Permute(dims).Contiguous().View([shard.Size(0), Degree * shard.Size(1), .. rest]);
        return sequence.Narrow(1, 0, tokens).Contiguous().MoveToOuterScope();
    }

    /// <summary>The layout of one MMDiT pass: <paramref name="imageTokens"/> image tokens and
    /// <paramref name="textTokens"/> text tokens, text first in the single-rank sequence when
    /// <paramref name="textFirst"/> (Flux) or behind the image (SD3).</summary>
    public JointSequenceParallel Joint(long imageTokens, long textTokens, bool textFirst) => new(this, imageTokens, textTokens, textFirst);

    /// <summary>The attention of one forward pass whose sharded sequence is <paramref name="imageTokens"/>
    /// image tokens per replica plus, when the text is split with the image, <paramref name="textShard"/>
    /// text tokens on every rank (all real), before the image shard when <paramref name="textFirst"/>.</summary>
    public SequenceParallelAttention Attention(long imageTokens, long textShard = 0, bool textFirst = false)
    {
        var text = Enumerable.Repeat(true, (int)textShard).ToArray();
        var valid = Enumerable.Range(0, Degree).Select(r =>
        {
            var image = ShardValidity(imageTokens, r);
            return textFirst ? text.Concat(image).ToArray() : image.Concat(text).ToArray();
        }).ToArray();
        return new SequenceParallelAttention(this, valid);
    }

    /// <summary>[B, s, H, D] on each Ulysses rank → [B, U·s, H/U, D]: the group's tokens, this rank's heads.</summary>
    internal Tensor ToHeadShards(Tensor x)
    {
        var degree = Ulysses.Size;
        if (degree == 1) return x;
        var send = Layout.UlyssesScatterHeads(x, degree);
        var received = Tensor.Empty(x.Context, x.DType, send.Shape.ToArray());
        Ulysses.AllToAll(send, received);
        return Layout.UlyssesGatherSequence(received);
    }

    /// <summary>The inverse of <see cref="ToHeadShards"/>: [B, U·s, H/U, D] → [B, s, H, D].</summary>
    internal Tensor FromHeadShards(Tensor x)
    {
        var degree = Ulysses.Size;
        if (degree == 1) return x;
        var send = Layout.UlyssesScatterSequence(x, degree);
        var received = Tensor.Empty(x.Context, x.DType, send.Shape.ToArray());
        Ulysses.AllToAll(send, received);
        return Layout.UlyssesGatherHeads(received);
    }

    /// <summary>Replicated tokens' outputs for this rank's heads [B, T, H/U, D] → every head [B, T, H, D].</summary>
    internal Tensor AllHeads(Tensor x)
    {
        var degree = Ulysses.Size;
        if (degree == 1) return x;
        var gathered = Tensor.Empty(x.Context, x.DType, [degree, .. x.Shape.ToArray()]);
        Ulysses.AllGather(x.Contiguous(), gathered);
        return Layout.UlyssesGatherHeads(gathered);
    }

    /// <summary>The Ring group's blocks [B, U·s, ...] (the tokens of each ring rank's Ulysses group) → the
    /// whole padded sequence [B, R·U·s, ...] in token order.</summary>
    internal Tensor GatherRing(Tensor x)
    {
        if (Ring.Size == 1) return x;
        var gathered = Tensor.Empty(x.Context, x.DType, [Ring.Size, .. x.Shape.ToArray()]);
        Ring.AllGather(x.Contiguous(), gathered);
        var dims = Enumerable.Range(0, gathered.Rank).ToArray();
        (dims[0], dims[1]) = (1, 0);
        return gathered.Permute(dims).Contiguous().View([x.Size(0), Ring.Size * x.Size(1), .. x.Shape[2..].ToArray()]);
    }

    /// <summary>This rank's heads of x [B, S, H, D]: the H/U that the Ulysses all-to-all gives it.</summary>
    internal Tensor OwnHeads(Tensor x)
    {
        var count = x.Size(2) / Ulysses.Size;
        return x.Narrow(2, Ulysses.Rank * count, count);
    }
}
