using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>Input tiles of <see cref="InputTile"/> every <see cref="InputStride"/>; each output tile is
/// blended with its neighbours over <see cref="OutputBlend"/> rows and columns, and its first
/// <see cref="OutputKeep"/> are kept (one input stride, scaled to the output).</summary>
internal readonly record struct TilePlan(int InputTile, int InputStride, int OutputBlend, int OutputKeep);

/// <summary>
/// The loop of diffusers' <c>tiled_decode</c> and <c>tiled_encode</c>: tiles in rows from the top, left to
/// right; each is blended in place with the already blended tile above (<c>blend_v</c>), then with the
/// already blended tile to its left (<c>blend_h</c>), and its kept corner is written into the output.
/// diffusers holds every processed tile until it stitches; this holds only what later tiles read — the
/// bottom edge of each tile of the previous row and the right edge of the previous tile — so the memory
/// beyond the output is one tile's activations.
/// </summary>
internal static class TiledPass
{
    /// <summary>input [N, C, H, W] → output [N, C', H·s, W·s], s = OutputKeep / InputStride, running
    /// <paramref name="process"/> on every tile (a view of the input).</summary>
    public static Tensor Run(Tensor input, TilePlan plan, Func<Tensor, Tensor> process)
    {
        using var scope = new TensorScope();
        long height = input.Size(2), width = input.Size(3);
        var rows = Starts(height, plan.InputStride);
        var columns = Starts(width, plan.InputStride);
        var above = new Tensor?[columns.Length];
        Tensor? output = null;
        for (int i = 0; i < rows.Length; i++)
        {
            Tensor? left = null;
            for (int j = 0; j < columns.Length; j++)
            {
                using var tile = Process(input, rows[i], columns[j], plan.InputTile, process);
                if (above[j] is { } upper) Blend(upper, tile, 2, plan.OutputBlend);
                if (left is { } previous) Blend(previous, tile, 3, plan.OutputBlend);
                Replace(ref above[j], i + 1 < rows.Length ? Edge(tile, 2, plan.OutputBlend) : null);
                Replace(ref left, j + 1 < columns.Length ? Edge(tile, 3, plan.OutputBlend) : null);
                output ??= Tensor.Empty(input.Context, tile.DType, input.Size(0), tile.Size(1),
                    height * plan.OutputKeep / plan.InputStride, width * plan.OutputKeep / plan.InputStride);
                Keep(tile, output, (long)i * plan.OutputKeep, (long)j * plan.OutputKeep, plan.OutputKeep);
            }
        }
        return output!.MoveToOuterScope();
    }

    /// <summary>diffusers' <c>range(0, length, stride)</c>.</summary>
    static long[] Starts(long length, int stride)
    {
        var starts = new long[(length + stride - 1) / stride];
        for (int i = 0; i < starts.Length; i++) starts[i] = (long)i * stride;
        return starts;
    }

    static Tensor Process(Tensor input, long row, long column, int size, Func<Tensor, Tensor> process)
    {
        using var rows = input.Narrow(2, row, Math.Min(size, input.Size(2) - row));
        using var tile = rows.Narrow(3, column, Math.Min(size, input.Size(3) - column));
        return process(tile);
    }

    /// <summary>diffusers' <c>blend_v</c> (dim 2) and <c>blend_h</c> (dim 3): with e = min(both sizes,
    /// blend), row y &lt; e of the tile becomes previous[−e + y]·(1 − y/e) + tile[y]·y/e. The previous
    /// tile is given by its last rows (<see cref="Edge"/>), which is all the formula reads.</summary>
    static void Blend(Tensor previous, Tensor tile, int dim, int blend)
    {
        var extent = Math.Min(Math.Min(previous.Size(dim), tile.Size(dim)), blend);
        using var a = previous.Narrow(dim, previous.Size(dim) - extent, extent);
        using var b = tile.Narrow(dim, 0, extent);
        using var weight = Ramp(tile, dim, extent);
        using var difference = Elementwise.Sub(b, a);
        Elementwise.AddMul(a, weight, difference, b);
    }

    /// <summary>y / extent for y = 0 … extent − 1 along <paramref name="dim"/>, broadcast over the rest.</summary>
    static Tensor Ramp(Tensor like, int dim, long extent)
    {
        var values = new float[extent];
        for (int y = 0; y < extent; y++) values[y] = (float)((double)y / extent);
        var shape = new long[] { 1, 1, 1, 1 };
        shape[dim] = extent;
        using var ramp = Tensor.FromArray(like.Context, values, shape);
        return ramp.To(like.DType);
    }

    /// <summary>A copy of the last min(size, blend) rows (dim 2) or columns (dim 3) of a blended tile:
    /// what the next tile below or to the right blends with; null when nothing is blended.</summary>
    static Tensor? Edge(Tensor tile, int dim, int blend)
    {
        if (blend == 0) return null;
        var extent = Math.Min(tile.Size(dim), blend);
        using var edge = tile.Narrow(dim, tile.Size(dim) - extent, extent);
        return edge.Clone();
    }

    static void Replace(ref Tensor? slot, Tensor? value)
    {
        slot?.Dispose();
        slot = value;
    }

    /// <summary>Writes the tile's first <paramref name="keep"/> rows and columns (fewer at the last row and
    /// column, which are smaller) at (row, column) of the output.</summary>
    static void Keep(Tensor tile, Tensor output, long row, long column, int keep)
    {
        long keepRows = Math.Min(keep, tile.Size(2)), keepColumns = Math.Min(keep, tile.Size(3));
        using var sourceRows = tile.Narrow(2, 0, keepRows);
        using var source = sourceRows.Narrow(3, 0, keepColumns);
        using var targetRows = output.Narrow(2, row, keepRows);
        using var target = targetRows.Narrow(3, column, keepColumns);
        Elementwise.Copy(source, target);
    }
}
