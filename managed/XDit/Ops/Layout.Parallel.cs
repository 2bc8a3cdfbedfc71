using XDit.Tensors;

namespace XDit.Ops;

/// <summary>How PipeFusion cuts the latent height into row bands (<see cref="Layout.RowBands"/>).</summary>
/// <param name="Heights">Latent rows of each band, top to bottom; they add up to the latent height.</param>
/// <param name="Adjusted">True when the rounding left fewer bands than asked for (xDiT logs a warning and
/// carries on).</param>
public sealed record RowBandPlan(IReadOnlyList<long> Heights, bool Adjusted);

public static partial class Layout
{
    // ---- Ulysses all-to-all -------------------------------------------------------------------------
    // N = the Ulysses degree, s = S/N the local sequence shard, h = H/N the heads each rank keeps.
    // The send and receive buffers are [N, B, s, h, D], contiguous, so that an equal-chunk all-to-all
    // over dimension 0 moves them: chunk r of rank q goes to rank r and arrives there as chunk q.

    /// <summary>Before attention: the local x [B, s, H, D] → the send buffer [N, B, s, H/N, D], whose chunk
    /// r holds heads r·H/N .. (r+1)·H/N − 1 (the heads rank r keeps).</summary>
    public static Tensor UlyssesScatterHeads(Tensor x, int degree) =>
        Operands.NewOutput(x.Context, x.DType, SendBufferShape("UlyssesScatterHeads", x, degree, 2),
            output => UlyssesScatterHeads(x, degree, output));

    /// <summary>As <see cref="UlyssesScatterHeads(Tensor, int)"/>, into a given send buffer.</summary>
    public static void UlyssesScatterHeads(Tensor x, int degree, Tensor output) =>
        StackChunks("UlyssesScatterHeads", x, degree, 2, output);

    /// <summary>Before attention, after the all-to-all: received [N, B, s, h, D] (chunk r = sequence shard
    /// r, all for this rank's heads) → [B, N·s, h, D], the full sequence in rank order.</summary>
    public static Tensor UlyssesGatherSequence(Tensor received) =>
        Operands.NewOutput(received.Context, received.DType, GatheredShape("UlyssesGatherSequence", received, 1),
            output => UlyssesGatherSequence(received, output));

    public static void UlyssesGatherSequence(Tensor received, Tensor output) =>
        UnstackChunks("UlyssesGatherSequence", received, 1, output);

    /// <summary>After attention: [B, S, h, D] → the send buffer [N, B, S/N, h, D], whose chunk r is
    /// sequence shard r (the tokens rank r owns).</summary>
    public static Tensor UlyssesScatterSequence(Tensor x, int degree) =>
        Operands.NewOutput(x.Context, x.DType, SendBufferShape("UlyssesScatterSequence", x, degree, 1),
            output => UlyssesScatterSequence(x, degree, output));

    public static void UlyssesScatterSequence(Tensor x, int degree, Tensor output) =>
        StackChunks("UlyssesScatterSequence", x, degree, 1, output);

    /// <summary>After attention, after the all-to-all: received [N, B, s, h, D] (chunk r = heads of rank
    /// r) → [B, s, N·h, D], this rank's tokens with every head.</summary>
    public static Tensor UlyssesGatherHeads(Tensor received) =>
        Operands.NewOutput(received.Context, received.DType, GatheredShape("UlyssesGatherHeads", received, 2),
            output => UlyssesGatherHeads(received, output));

    public static void UlyssesGatherHeads(Tensor received, Tensor output) =>
        UnstackChunks("UlyssesGatherHeads", received, 2, output);

    // ---- PipeFusion row bands -----------------------------------------------------------------------

    /// <summary>
    /// PipeFusion's band heights, computed as xDiT's <c>_calc_patches_metadata</c> does. The band height is
    /// ⌈rows / patches⌉ rounded up to a multiple of <paramref name="multiple"/> (patch size × sequence-
    /// parallel degree), so that each band splits into whole patch rows on every SP rank. The number of
    /// bands then becomes ⌈rows / height⌉, which may differ from <paramref name="patches"/>
    /// (<see cref="RowBandPlan.Adjusted"/>). The last band takes the remainder. It must be a multiple too,
    /// which holds exactly when <paramref name="rows"/> is one. xDiT raises otherwise, and so does this.
    /// </summary>
    /// <param name="rows">Latent height in rows (for Flux, the rows of the 2×2-packed grid, with patch size 1).</param>
    public static RowBandPlan RowBands(long rows, int patches, int multiple)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(patches, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(multiple, 1);
        var height = CeilDiv(CeilDiv(rows, patches), multiple) * multiple;
        var bands = CeilDiv(rows, height);
        var last = rows - height * (bands - 1);
        if (last % multiple != 0)
            throw new ArgumentException(
                $"RowBands: {rows} latent rows in bands of {height} leave a last band of {last} rows, which is not a " +
                $"multiple of {multiple} (patch size × sequence-parallel degree); the latent height must be a multiple of {multiple}");
        // height ≥ ⌈rows / patches⌉, so bands ≤ patches: xDiT can only lower the number of bands.
        var heights = Enumerable.Repeat(height, (int)bands - 1).Append(last).ToArray();
        return new RowBandPlan(heights, bands != patches);
    }

    /// <summary>A view of the tokens [B, S, C] of grid rows <paramref name="rowStart"/> ..
    /// <paramref name="rowStart"/> + <paramref name="rowCount"/> − 1, for tokens row-major over a grid
    /// <paramref name="gridWidth"/> wide. Rows count patch-grid rows: a band of <c>k</c> latent rows
    /// from <see cref="RowBands"/> is <c>k / patch</c> of them.</summary>
    public static Tensor TokenBand(Tensor tokens, int gridWidth, long rowStart, long rowCount)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(gridWidth, 1);
        if (tokens.Rank != 3 || tokens.Size(1) % gridWidth != 0)
            throw new ArgumentException(
                $"TokenBand: tokens ({Describe(tokens)}) must be [B, S, C] with S a whole number of grid rows {gridWidth} wide");
        var gridRows = tokens.Size(1) / gridWidth;
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > gridRows)
            throw new ArgumentOutOfRangeException(nameof(rowStart),
                $"TokenBand: rows {rowStart} .. {rowStart + rowCount - 1} are outside the {gridRows} grid rows of tokens ({Describe(tokens)})");
        return tokens.Narrow(1, rowStart * gridWidth, rowCount * gridWidth);
    }

    // ---- shared -------------------------------------------------------------------------------------

    /// <summary>[.., N·k at <paramref name="dim"/>, ..] → [N, .., k, ..]: piece r of the dimension goes to
    /// slot r of a new leading dimension. One copy per piece, so both sides may have any strides.</summary>
    static void StackChunks(string op, Tensor x, int degree, int dim, Tensor output)
    {
        var shape = SendBufferShape(op, x, degree, dim);
        CheckOutput(op, output, x, shape);
        var piece = shape[dim + 1];
        for (int r = 0; r < degree; r++)
        {
            using var chunk = x.Narrow(dim, r * piece, piece);
            using var source = chunk.Unsqueeze(0);
            using var slot = output.Narrow(0, r, 1);
            Elementwise.Copy(source, slot);
        }
    }

    /// <summary>The inverse of <see cref="StackChunks"/>: slot r of [N, .., k, ..] goes to piece r of
    /// <paramref name="dim"/> in [.., N·k, ..].</summary>
    static void UnstackChunks(string op, Tensor received, int dim, Tensor output)
    {
        var shape = GatheredShape(op, received, dim);
        CheckOutput(op, output, received, shape);
        var piece = received.Size(dim + 1);
        for (int r = 0; r < received.Size(0); r++)
        {
            using var source = received.Narrow(0, r, 1);
            using var band = output.Narrow(dim, r * piece, piece);
            using var slot = band.Unsqueeze(0);
            Elementwise.Copy(source, slot);
        }
    }

    static long[] SendBufferShape(string op, Tensor x, int degree, int dim)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentOutOfRangeException.ThrowIfLessThan(degree, 1);
        var what = dim == 2 ? "heads" : "tokens";
        if (x.Rank != 4 || x.Size(dim) % degree != 0)
            throw new ArgumentException(
                $"{op}: x ({Describe(x)}) must be [B, S, H, D] with its {what} (dimension {dim}) divisible by the Ulysses degree {degree}");
        var shape = new long[] { degree, x.Size(0), x.Size(1), x.Size(2), x.Size(3) };
        shape[dim + 1] /= degree;
        return shape;
    }

    static long[] GatheredShape(string op, Tensor received, int dim)
    {
        ArgumentNullException.ThrowIfNull(received);
        if (received.Rank != 5)
            throw new ArgumentException($"{op}: received ({Describe(received)}) must be [N, B, S/N, H/N, D]");
        var shape = received.Shape[1..].ToArray();
        shape[dim] *= received.Size(0);
        return shape;
    }

    static long CeilDiv(long a, long b) => (a + b - 1) / b;
}
