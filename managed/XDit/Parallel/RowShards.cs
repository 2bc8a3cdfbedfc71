using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// Feature maps [N, C, H, W] split by rows over a group of ranks, as the parallel VAE decode (xDiT's
/// DistVAE) splits them: rank r holds rows <see cref="Start"/>(r) .. + <see cref="Rows"/>(r) − 1, as even
/// as the height allows (the first H mod R ranks one row more). A 3×3 convolution reads one halo row from
/// each neighbour; a group norm merges every rank's fp64 statistics; attention gathers every rank's keys
/// and values; nearest upsampling stays local. Every operation is collective over the group, and the
/// results equal those of one rank holding the whole map.
/// </summary>
public sealed class RowShards
{
    readonly long[] _rows;
    readonly long[] _starts;

    /// <param name="height">Rows of the map; at least one per rank.</param>
    public RowShards(ICommunicator group, long height)
        : this(group, Enumerable.Range(0, group.Size).Select(r => height / group.Size + (r < height % group.Size ? 1 : 0)).ToArray())
    {
        if (height < group.Size)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"a map of {height} rows cannot be split over {group.Size} ranks (at least one row each); use fewer ranks for the parallel VAE");
    }

    RowShards(ICommunicator group, long[] rows)
    {
        Group = group;
        _rows = rows;
        _starts = new long[rows.Length];
        for (int r = 1; r < rows.Length; r++) _starts[r] = _starts[r - 1] + rows[r - 1];
    }

    public ICommunicator Group { get; }
    public long Height => _rows.Sum();
    public long Rows(int rank) => _rows[rank];
    public long Start(int rank) => _starts[rank];
    public long LocalRows => _rows[Group.Rank];
    long MaxRows => _rows.Max();

    /// <summary>The same split of a map <paramref name="factor"/> times taller (after upsampling).</summary>
    public RowShards Scaled(int factor) => new(Group, _rows.Select(r => r * factor).ToArray());

    /// <summary>This rank's rows of a whole map.</summary>
    public Tensor Slice(Tensor whole) => whole.Narrow(2, Start(Group.Rank), LocalRows).Contiguous();

    /// <summary>A convolution of the local rows as the whole map would get it: 1×1 locally; 3×3 with
    /// padding 1 after fetching the neighbours' edge rows (zeros at the map's top and bottom).</summary>
    public Tensor Conv(Conv2d conv, Tensor local)
    {
        var kernel = conv.Weight.Value.Size(2);
        if (kernel == 1 && conv.Padding == 0) return conv.Forward(local);
        if (kernel != 3 || conv.Padding != 1 || conv.Stride != 1)
            throw new XDitException(Native.XditStatus.Unsupported,
                $"row-parallel convolution supports 1×1 and 3×3 (padding 1, stride 1) kernels; got {kernel}×{kernel}, padding {conv.Padding}, stride {conv.Stride}");
        using var scope = new TensorScope();
        var withHalo = WithHaloRows(local);
        long n = local.Size(0), w = local.Size(3);
        var output = Tensor.Empty(local.Context, local.DType, n, conv.Weight.Value.Size(0), LocalRows, w);
        Convolution.Conv2d(withHalo, conv.Weight.Value, conv.Bias?.Value, 1, 1, 0, 1, output);
        return output.MoveToOuterScope();
    }

    /// <summary>[N, C, rows, W] → [N, C, rows + 2, W]: the previous rank's last row above, the next rank's
    /// first row below (zero rows at the edges of the map).</summary>
    Tensor WithHaloRows(Tensor local)
    {
        long n = local.Size(0), c = local.Size(1), w = local.Size(3);
        var edges = Layout.Cat(0, local.Narrow(2, 0, 1).Unsqueeze(0), local.Narrow(2, LocalRows - 1, 1).Unsqueeze(0)); // [2, N, C, 1, W]
        var all = Tensor.Empty(local.Context, local.DType, Group.Size, 2, n, c, 1, w);
        Group.AllGather(edges, all);
        int rank = Group.Rank;
        Tensor Edge(int peer, int which) => all.Narrow(0, peer, 1).Squeeze(0).Narrow(0, which, 1).Squeeze(0);
        var above = rank > 0 ? Edge(rank - 1, 1) : Tensor.Zeros(local.Context, local.DType, n, c, 1, w);
        var below = rank < Group.Size - 1 ? Edge(rank + 1, 0) : Tensor.Zeros(local.Context, local.DType, n, c, 1, w);
        return Layout.Cat(2, above, local, below);
    }

    /// <summary>The group norm of the whole map, applied to the local rows: each rank's fp64 mean and sum
    /// of squared deviations per group, all-gathered and merged in rank order (Chan et al.), so every rank
    /// normalises with the same statistics.</summary>
    public Tensor GroupNorm(GroupNorm norm, Tensor local)
    {
        using var scope = new TensorScope();
        long n = local.Size(0), c = local.Size(1), w = local.Size(3);
        var groups = norm.Groups;
        var mine = Normalization.GroupNormStatistics(local, groups);
        var all = Tensor.Empty(local.Context, DType.F32, Group.Size, n, groups, 2);
        Group.AllGather(mine, all);
        var parts = all.ToArray<float>();
        var perGroup = c / groups * w; // elements per group in one row
        var merged = new float[n * groups * 2];
        for (long i = 0; i < n * groups; i++)
        {
            double count = 0, mean = 0, squares = 0;
            for (int r = 0; r < Group.Size; r++)
            {
                double rCount = Rows(r) * perGroup, rMean = parts[(r * n * groups + i) * 2], rSquares = parts[(r * n * groups + i) * 2 + 1];
                var total = count + rCount;
                var delta = rMean - mean;
                mean += delta * rCount / total;
                squares += rSquares + delta * delta * count * rCount / total;
                count = total;
            }
            merged[i * 2] = (float)mean;
            merged[i * 2 + 1] = (float)(1.0 / Math.Sqrt(squares / count + norm.Eps));
        }
        var statistics = Tensor.FromArray(local.Context, merged, n, groups, 2);
        return Normalization.GroupNormWithStatistics(local, groups, statistics, norm.Weight.Value, norm.Bias.Value).MoveToOuterScope();
    }

    /// <summary>Every rank's tokens [N, rows·W, C] (row-major pixels) as one key/value sequence
    /// [N, H·W padded, C] and its key mask, or a null mask when the rows split evenly.</summary>
    public (Tensor Tokens, Tensor? Mask) GatherTokens(Tensor localTokens, long width)
    {
        long n = localTokens.Size(0), c = localTokens.Size(2), slot = MaxRows * width;
        using var scope = new TensorScope();
        var padded = Tensor.Zeros(localTokens.Context, localTokens.DType, n, slot, c);
        Elementwise.Copy(localTokens, padded.Narrow(1, 0, localTokens.Size(1)));
        var all = Tensor.Empty(localTokens.Context, localTokens.DType, Group.Size, n, slot, c);
        Group.AllGather(padded, all);
        var tokens = all.Permute(1, 0, 2, 3).Contiguous().View(n, Group.Size * slot, c).MoveToOuterScope();
        if (_rows.All(r => r == MaxRows)) return (tokens, null);
        var valid = Enumerable.Range(0, Group.Size).SelectMany(r => Enumerable.Range(0, (int)slot).Select(i => i < Rows(r) * width)).ToArray();
        var mask = Tensor.FromArray(localTokens.Context, Enumerable.Range(0, (int)n).SelectMany(_ => valid).ToArray(), n, valid.Length);
        return (tokens, mask.MoveToOuterScope());
    }

    /// <summary>The whole map [N, C, H, W] on every rank from each rank's rows.</summary>
    public Tensor Gather(Tensor local)
    {
        using var scope = new TensorScope();
        long n = local.Size(0), c = local.Size(1), w = local.Size(3);
        var padded = Tensor.Zeros(local.Context, local.DType, n, c, MaxRows, w);
        Elementwise.Copy(local, padded.Narrow(2, 0, LocalRows));
        var all = Tensor.Empty(local.Context, local.DType, Group.Size, n, c, MaxRows, w);
        Group.AllGather(padded, all);
        var pieces = Enumerable.Range(0, Group.Size).Select(r => all.Narrow(0, r, 1).Squeeze(0).Narrow(2, 0, Rows(r))).ToArray();
        return Layout.Cat(2, pieces).MoveToOuterScope();
    }
}
