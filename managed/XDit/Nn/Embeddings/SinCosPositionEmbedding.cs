using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Embeddings;

/// <summary>
/// The fixed sine-cosine position tables of diffusers 0.32 (<c>get_1d_sincos_pos_embed_from_grid</c>,
/// <c>get_2d_sincos_pos_embed</c>) that PixArt, Latte and SD3 add to the patch embeddings, and SD3's
/// centre crop of its stored table (<c>PatchEmbed.cropped_pos_embed</c>).
/// </summary>
/// <remarks>
/// diffusers builds the position grid in float32 (a float32 <c>arange</c> divided by the grid-to-base
/// ratio and the interpolation scale), then computes the frequencies, angles, sines and cosines in
/// float64 and stores the table as float32. The same precision is kept here, so the table equals the
/// buffer diffusers registers (and the one stored in SD3 checkpoints).
/// </remarks>
public static class SinCosPositionEmbedding
{
    /// <summary><c>get_1d_sincos_pos_embed_from_grid</c>: row m is
    /// <c>[sin(p_m·ω_k) | cos(p_m·ω_k)]</c> with <c>ω_k = 10000^(−k / (embedDim/2))</c>, k &lt; embedDim/2;
    /// row-major [positions.Length, embedDim]. Latte's frame table is this over 0 .. video_length − 1.</summary>
    public static float[] OneDimensional(int embedDim, ReadOnlySpan<float> positions)
    {
        var omega = Omegas(embedDim, nameof(embedDim));
        var result = new float[positions.Length * embedDim];
        for (int m = 0; m < positions.Length; m++)
            WriteSinCos(result.AsSpan(m * embedDim, embedDim), positions[m], omega);
        return result;
    }

    /// <summary><see cref="OneDimensional(int, ReadOnlySpan{float})"/> as an f32 tensor [positions.Length, embedDim].</summary>
    public static Tensor OneDimensional(DeviceContext context, int embedDim, ReadOnlySpan<float> positions) =>
        Tensor.FromArray(context, OneDimensional(embedDim, positions), positions.Length, embedDim);

    /// <summary>
    /// <c>get_2d_sincos_pos_embed(embedDim, (gridHeight, gridWidth), base_size, interpolation_scale)</c>:
    /// row-major [gridHeight·gridWidth, embedDim], rows in (row, column) order. The grid coordinate of
    /// index i is <c>i / (gridSize / baseSize) / interpolationScale</c>, so grids larger than the base
    /// size are squeezed into the range the model was trained on. The first half of the channels encodes
    /// the COLUMN coordinate and the second half the row (diffusers' meshgrid puts w first, although the
    /// code names the halves emb_h, emb_w).
    /// </summary>
    /// <param name="embedDim">Channels; a multiple of 4 (two halves of sin | cos).</param>
    /// <param name="gridHeight">Patch rows (latent height / patch size).</param>
    /// <param name="gridWidth">Patch columns.</param>
    /// <param name="baseSize">The model's training grid (diffusers: <c>sample_size / patch_size</c>).</param>
    /// <param name="interpolationScale">diffusers' <c>interpolation_scale</c> (PixArt-α: max(sample_size // 64, 1); PixArt-Σ 1024: 2).</param>
    /// <param name="rowStart">The first grid row to write (a PipeFusion band's); the coordinates are still
    /// those of the whole <paramref name="gridHeight"/>-row grid.</param>
    /// <param name="rowCount">How many grid rows to write; −1 for the rest of the grid.</param>
    public static float[] TwoDimensional(int embedDim, int gridHeight, int gridWidth, double baseSize, double interpolationScale,
        int rowStart = 0, int rowCount = -1)
    {
        var (columnHalves, rowHalves) = TwoDimensionalHalves(embedDim, gridHeight, gridWidth, baseSize, interpolationScale, ref rowStart, ref rowCount);
        var half = embedDim / 2;
        var result = new float[rowCount * gridWidth * embedDim];
        for (int i = 0; i < rowCount; i++)
        for (int j = 0; j < gridWidth; j++)
        {
            var row = result.AsSpan((i * gridWidth + j) * embedDim, embedDim);
            columnHalves.AsSpan(j * half, half).CopyTo(row[..half]);
            rowHalves.AsSpan(i * half, half).CopyTo(row[half..]);
        }
        return result;
    }

    /// <summary><see cref="TwoDimensional(int, int, int, double, double, int, int)"/> as an f32 tensor
    /// [rows·gridWidth, embedDim]: the sines of each column and each row are computed once on the host and
    /// the table is assembled on the device (broadcast copies), so a large grid (PixArt-Σ at 2048²: 16384
    /// tokens × 1152 channels) costs a few thousand sines and a small upload per call.</summary>
    public static Tensor TwoDimensional(DeviceContext context, int embedDim, int gridHeight, int gridWidth, double baseSize,
        double interpolationScale, int rowStart = 0, int rowCount = -1)
    {
        var (columnHalves, rowHalves) = TwoDimensionalHalves(embedDim, gridHeight, gridWidth, baseSize, interpolationScale, ref rowStart, ref rowCount);
        var half = embedDim / 2;
        var table = Tensor.Empty(context, DType.F32, rowCount * (long)gridWidth, embedDim);
        using var scope = new TensorScope();
        var grid = table.View(rowCount, gridWidth, embedDim);
        var columns = Tensor.FromArray(context, columnHalves, 1, gridWidth, half);
        var rows = Tensor.FromArray(context, rowHalves, rowCount, 1, half);
        Elementwise.Copy(columns.Expand(rowCount, gridWidth, half), grid.Narrow(2, 0, half));
        Elementwise.Copy(rows.Expand(rowCount, gridWidth, half), grid.Narrow(2, half, half));
        return table;
    }

    /// <summary>The two halves of the 2-D table's rows: [sin | cos] of each column coordinate
    /// [gridWidth, embedDim/2], and of each written row's coordinate [rowCount, embedDim/2].</summary>
    static (float[] Columns, float[] Rows) TwoDimensionalHalves(int embedDim, int gridHeight, int gridWidth, double baseSize,
        double interpolationScale, ref int rowStart, ref int rowCount)
    {
        if (embedDim <= 0 || embedDim % 4 != 0)
            throw new ArgumentOutOfRangeException(nameof(embedDim), embedDim, "the 2-D table needs a positive multiple of 4 channels");
        if (gridHeight <= 0) throw new ArgumentOutOfRangeException(nameof(gridHeight), gridHeight, "the grid height must be positive");
        if (gridWidth <= 0) throw new ArgumentOutOfRangeException(nameof(gridWidth), gridWidth, "the grid width must be positive");
        if (!(baseSize > 0)) throw new ArgumentOutOfRangeException(nameof(baseSize), baseSize, "the base size must be positive");
        if (!(interpolationScale > 0))
            throw new ArgumentOutOfRangeException(nameof(interpolationScale), interpolationScale, "the interpolation scale must be positive");
        if (rowCount < 0) rowCount = gridHeight - rowStart;
        if (rowStart < 0 || rowCount < 0 || rowStart + rowCount > gridHeight)
            throw new ArgumentOutOfRangeException(nameof(rowStart), rowStart, $"rows {rowStart} + {rowCount} are outside the grid's {gridHeight}");

        var rowCoordinates = GridCoordinates(gridHeight, baseSize, interpolationScale);
        var columnCoordinates = GridCoordinates(gridWidth, baseSize, interpolationScale);
        var half = embedDim / 2;
        var omega = Omegas(half, nameof(embedDim));
        var columns = new float[gridWidth * half];
        for (int j = 0; j < gridWidth; j++) WriteSinCos(columns.AsSpan(j * half, half), columnCoordinates[j], omega);
        var rows = new float[rowCount * half];
        for (int i = 0; i < rowCount; i++) WriteSinCos(rows.AsSpan(i * half, half), rowCoordinates[rowStart + i], omega);
        return (columns, rows);
    }

    /// <summary>
    /// SD3's <c>cropped_pos_embed</c>: the centred <paramref name="height"/> × <paramref name="width"/>
    /// window of a square table [maxSize·maxSize, C] (the <c>pos_embed.pos_embed</c> buffer of an SD3
    /// checkpoint, row-major over the maxSize × maxSize grid), as row-major [height·width, C]. The window
    /// starts at row (maxSize − height) / 2 and column (maxSize − width) / 2, rounded down.
    /// </summary>
    /// <param name="table">The full table, maxSize² rows of C channels.</param>
    /// <param name="maxSize">diffusers' <c>pos_embed_max_size</c>.</param>
    /// <param name="height">Patch rows of the image (latent height / patch size), at most maxSize.</param>
    /// <param name="width">Patch columns, at most maxSize.</param>
    public static float[] CropCenter(ReadOnlySpan<float> table, int maxSize, int height, int width)
    {
        if (maxSize <= 0) throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "the table size must be positive");
        var cells = (long)maxSize * maxSize;
        if (table.Length == 0 || table.Length % cells != 0)
            throw new ArgumentException(
                $"the table has {table.Length} elements, not a multiple of {maxSize}x{maxSize} rows", nameof(table));
        var channels = (int)(table.Length / cells);
        var (top, left) = CropOrigin(maxSize, height, width);
        var result = new float[height * width * channels];
        for (int i = 0; i < height; i++)
            table.Slice(((top + i) * maxSize + left) * channels, width * channels)
                .CopyTo(result.AsSpan(i * width * channels, width * channels));
        return result;
    }

    /// <summary><see cref="CropCenter(ReadOnlySpan{float}, int, int, int)"/> of a table already on a
    /// device: <paramref name="table"/> is [maxSize², C] or diffusers' buffer shape [1, maxSize², C];
    /// the result is a new contiguous tensor [height·width, C] of the same dtype.</summary>
    public static Tensor CropCenter(Tensor table, int height, int width)
    {
        using var window = CenterWindow(table, height, width);
        var result = Tensor.Empty(table.Context, table.DType, (long)height * width, window.Size(2));
        try
        {
            using var resultGrid = result.View(height, width, window.Size(2));
            Elementwise.Copy(window, resultGrid);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    /// <summary>The same centre crop as a view [height, width, C] into <paramref name="table"/>, no copy
    /// (a PipeFusion band narrows it to its rows and adds it where it lies).</summary>
    public static Tensor CenterWindow(Tensor table, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.Rank is < 2 or > 3 || (table.Rank == 3 && table.Size(0) != 1))
            throw new ArgumentException($"the position table must be [rows, C] or [1, rows, C], got {table}", nameof(table));
        var cells = table.Size(-2);
        var channels = table.Size(-1);
        var maxSize = (int)Math.Round(Math.Sqrt(cells));
        if ((long)maxSize * maxSize != cells)
            throw new ArgumentException($"the position table {table} has {cells} rows, not a square grid", nameof(table));
        var (top, left) = CropOrigin(maxSize, height, width);
        using var grid = table.Reshape(maxSize, maxSize, channels);
        using var rows = grid.Narrow(0, top, height);
        return rows.Narrow(1, left, width);
    }

    static (int Top, int Left) CropOrigin(int maxSize, int height, int width)
    {
        if (height <= 0 || height > maxSize)
            throw new ArgumentOutOfRangeException(nameof(height), height, $"the crop height must be in 1..{maxSize} (pos_embed_max_size)");
        if (width <= 0 || width > maxSize)
            throw new ArgumentOutOfRangeException(nameof(width), width, $"the crop width must be in 1..{maxSize} (pos_embed_max_size)");
        return ((maxSize - height) / 2, (maxSize - width) / 2);
    }

    /// <summary>Grid coordinates in float32, each division rounded as diffusers' float32 tensor does.</summary>
    static float[] GridCoordinates(int size, double baseSize, double interpolationScale)
    {
        var ratio = (float)(size / baseSize);
        var scale = (float)interpolationScale;
        var coordinates = new float[size];
        for (int i = 0; i < size; i++) coordinates[i] = i / ratio / scale;
        return coordinates;
    }

    /// <summary>ω_k = 1 / 10000^(k / (embedDim/2)) in float64, k &lt; embedDim/2.</summary>
    static double[] Omegas(int embedDim, string parameterName)
    {
        if (embedDim <= 0 || embedDim % 2 != 0)
            throw new ArgumentOutOfRangeException(parameterName, embedDim, "a sin | cos table needs a positive even number of channels");
        var omega = new double[embedDim / 2];
        for (int k = 0; k < omega.Length; k++) omega[k] = 1.0 / Math.Pow(10000, k / (embedDim / 2.0));
        return omega;
    }

    /// <summary>Writes [sin(p·ω) | cos(p·ω)], angles in float64, into <paramref name="destination"/>.</summary>
    static void WriteSinCos(Span<float> destination, float position, double[] omega)
    {
        for (int k = 0; k < omega.Length; k++)
        {
            var angle = (double)position * omega[k];
            destination[k] = (float)Math.Sin(angle);
            destination[omega.Length + k] = (float)Math.Cos(angle);
        }
    }
}
