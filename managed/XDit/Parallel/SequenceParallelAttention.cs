using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>Tokens every rank of a sequence group holds whole (MMDiT text that the degree does not divide):
/// their keys and values join the attention once, in front of the sequence or behind it; their queries
/// (optional) attend to every key.</summary>
public sealed record ReplicatedTokens(Tensor? Queries, Tensor Keys, Tensor Values, bool First);

/// <summary>
/// USP attention (xDiT's <c>xFuserLongContextAttention</c>) over a sequence sharded across a
/// <see cref="SequenceParallelGroup"/>: an all-to-all in each Ulysses group turns [B, s, H, D] on U ranks
/// into [B, U·s, H/U, D]; ring attention then passes those key/value blocks around the Ring group,
/// merging the partial attentions with their log-sum-exp in fp32; the inverse all-to-all returns
/// [B, s, H, D]. Padding tokens are masked out of every block (xDiT attends to them). Replicated tokens'
/// partials are merged in one global order on every rank, so their outputs stay bit-identical across the
/// group, as replicated state must.
/// </summary>
public sealed class SequenceParallelAttention : ISequenceAttention
{
    readonly SequenceParallelGroup _group;
    readonly bool[][] _valid;

    /// <param name="localValid">For each sequence-parallel rank, which of its local tokens are real.</param>
    internal SequenceParallelAttention(SequenceParallelGroup group, bool[][] localValid)
    {
        _group = group;
        _valid = localValid;
    }

    public Tensor Attend(Tensor q, Tensor k, Tensor v) => Attend(q, k, v, null).Sharded;

    /// <summary>
    /// q, k, v [B, s, H, D] (this rank's shard; q may hold fewer tokens than k, the same number on every
    /// rank) → the attention of its queries over every rank's keys (and
    /// the replicated keys) [B, s, H, Dv], and the replicated queries' attention [B, T, H, Dv] when given.
    /// </summary>
    public (Tensor Sharded, Tensor? Replicated) Attend(Tensor q, Tensor k, Tensor v, ReplicatedTokens? replicated)
    {
        ArgumentNullException.ThrowIfNull(q);
        int degree = _group.Ulysses.Size, ringSize = _group.Ring.Size;
        var heads = q.Size(2);
        if (heads % degree != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{heads} attention heads do not split over ulysses degree {degree}");
        if (k.Size(1) != _valid[_group.Rank].Length)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"sequence-parallel attention planned for {_valid[_group.Rank].Length} local tokens got keys {k.ShapeString}");
        using var scope = new TensorScope();
        var queries = _group.ToHeadShards(q);
        var keys = _group.ToHeadShards(k);
        var values = _group.ToHeadShards(v);
        Tensor Heads(Tensor t) => _group.OwnHeads(t);

        // This rank's own block first, then the others as they come around the ring.
        var ringRank = _group.Ring.Rank;
        var (output, lse) = Partial(queries, keys, values, BlockMask(ringRank, queries));
        var replicatedQueries = replicated?.Queries is { } rq ? Heads(rq) : null;
        var replicatedPartials = new (Tensor Out, Tensor Lse)?[ringSize];
        (Tensor Out, Tensor Lse)? replicatedOwn = null;
        if (replicated is not null)
        {
            var (rk, rv) = (Heads(replicated.Keys), Heads(replicated.Values));
            var (textOut, textLse) = Partial(queries, rk, rv, null);
            Attention.Merge(output, lse, textOut, textLse, output, lse);
            if (replicatedQueries is not null)
            {
                replicatedOwn = Partial(replicatedQueries, rk, rv, null);
                replicatedPartials[ringRank] = Partial(replicatedQueries, keys, values, BlockMask(ringRank, replicatedQueries));
            }
        }
        if (ringSize > 1)
        {
            // Two buffers each for keys and values, used in turn; the first pass reads the (caller's) own block.
            Tensor[] keyBuffers = [Tensor.Empty(keys.Context, keys.DType, keys.Shape.ToArray()), Tensor.Empty(keys.Context, keys.DType, keys.Shape.ToArray())];
            Tensor[] valueBuffers = [Tensor.Empty(values.Context, values.DType, values.Shape.ToArray()), Tensor.Empty(values.Context, values.DType, values.Shape.ToArray())];
            for (int step = 1; step < ringSize; step++)
            {
                var (nextKeys, nextValues) = (keyBuffers[step % 2], valueBuffers[step % 2]);
                _group.Ring.Shift(keys, nextKeys);
                _group.Ring.Shift(values, nextValues);
                (keys, values) = (nextKeys, nextValues);
                var block = (ringRank - step + ringSize) % ringSize;
                var (blockOut, blockLse) = Partial(queries, keys, values, BlockMask(block, queries));
                Attention.Merge(output, lse, blockOut, blockLse, output, lse);
                if (replicatedQueries is not null)
                    replicatedPartials[block] = Partial(replicatedQueries, keys, values, BlockMask(block, replicatedQueries));
            }
        }

        var sharded = _group.FromHeadShards(output).MoveToOuterScope();
        if (replicatedQueries is null) return (sharded, null);
        // One order on every rank: the replicated keys where the single-rank sequence has them, then the blocks in sequence order.
        var order = replicatedPartials.Select(p => p!.Value).ToList();
        if (replicated!.First) order.Insert(0, replicatedOwn!.Value);
        else order.Add(replicatedOwn!.Value);
        var (mergedOut, mergedLse) = order[0];
        mergedOut = mergedOut.Clone();
        mergedLse = mergedLse.Clone();
        foreach (var (partOut, partLse) in order.Skip(1)) Attention.Merge(mergedOut, mergedLse, partOut, partLse, mergedOut, mergedLse);
        return (sharded, _group.AllHeads(mergedOut).MoveToOuterScope());
    }

    /// <summary>Attention of <paramref name="queries"/> over one key block, with its log-sum-exp.</summary>
    static (Tensor Out, Tensor Lse) Partial(Tensor queries, Tensor keys, Tensor values, Tensor? mask)
    {
        var lse = Tensor.Empty(queries.Context, DType.F32, queries.Size(0), queries.Size(2), queries.Size(1));
        var output = Attention.ScaledDotProduct(queries, keys, values, mask, lse: lse);
        return (output, lse);
    }

    /// <summary>The key mask [B, U·s] of ring block <paramref name="block"/> (the local tokens of its Ulysses
    /// group, in Ulysses rank order), or null when every token is real.</summary>
    Tensor? BlockMask(int block, Tensor like)
    {
        var degree = _group.Ulysses.Size;
        var valid = Enumerable.Range(block * degree, degree).SelectMany(r => _valid[r]).ToArray();
        if (valid.All(x => x)) return null;
        var batch = like.Size(0);
        var rows = Enumerable.Range(0, (int)batch).SelectMany(_ => valid).ToArray();
        return Tensor.FromArray(like.Context, rows, batch, valid.Length);
    }
}
