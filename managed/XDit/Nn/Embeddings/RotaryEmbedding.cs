using XDit.Ops;
namespace XDit.Nn.Embeddings;

/// <summary>
/// Rotary position tables as diffusers 0.32 builds them: the 1-D table of
/// <c>get_1d_rotary_pos_embed(dim, pos, theta, use_real=True)</c> and the per-axis concatenations of
/// Flux (<c>FluxPosEmbed</c>, positions from the id rows), HunyuanVideo and CogVideoX (positions from
/// the (t, y, x) latent grid).
/// </summary>
/// <remarks>
/// Pair k of a <c>dim</c>-channel table turns by the angle <c>pos · θ^(−2k/dim)</c>, k &lt; dim/2. The
/// tables are computed on the host, once per resolution; the precision of each stage follows the
/// model's <see cref="AnglePrecision"/>, so the tables equal the ones diffusers feeds its attention. Each
/// distinct position of an axis is evaluated once (a 64 × 64 Flux image has 65 per axis, not 4096).
/// </remarks>
public static class RotaryEmbedding
{
    /// <summary>The table of one axis: row s holds the cosines and sines of the angles of
    /// <paramref name="positions"/>[s], laid out as <paramref name="pairing"/> says.</summary>
    /// <param name="dim">Channels of the table (even).</param>
    /// <param name="positions">One position per row, as float32 (diffusers' position tensors are float32).</param>
    /// <param name="theta">Base of the frequencies (10000 for most models, 256 for HunyuanVideo).</param>
    /// <param name="pairing">Interleaved (diffusers' <c>repeat_interleave_real=True</c>: Flux, HunyuanVideo,
    /// CogVideoX, HunyuanDiT) or halves (<c>False</c>: Stable Audio, Allegro); <see cref="Rotary"/> must
    /// pair the same way when it applies the table.</param>
    /// <param name="precision">The model's <c>freqs_dtype</c>.</param>
    public static RotaryTables OneAxis(int dim, ReadOnlySpan<float> positions, double theta, RotaryPairing pairing,
        AnglePrecision precision)
    {
        CheckAxisDim(dim, nameof(dim));
        CheckTheta(theta);
        var cos = new float[positions.Length * dim];
        var sin = new float[positions.Length * dim];
        FillAxis(cos, sin, dim, 0, dim, positions, 1, 0, theta, pairing, precision);
        return new RotaryTables(cos, sin, positions.Length, dim);
    }

    /// <summary>
    /// One interleaved table per axis, concatenated along the channels: columns
    /// [0, axesDim[0]) rotate by coordinate 0 of each id row, the next axesDim[1] by coordinate 1, and so
    /// on. <paramref name="ids"/> is row-major [S, axesDim.Count]; the result is [S, Σ axesDim].
    /// </summary>
    public static RotaryTables MultiAxis(ReadOnlySpan<float> ids, IReadOnlyList<int> axesDim, double theta,
        AnglePrecision precision)
    {
        ArgumentNullException.ThrowIfNull(axesDim);
        var axes = axesDim.Count;
        if (axes == 0) throw new ArgumentException("at least one axis is needed", nameof(axesDim));
        foreach (var axisDim in axesDim) CheckAxisDim(axisDim, nameof(axesDim));
        CheckTheta(theta);
        if (ids.Length % axes != 0)
            throw new ArgumentException(
                $"ids has {ids.Length} elements, not whole rows of {axes} coordinates (one per entry of axesDim)", nameof(ids));
        var positions = ids.Length / axes;
        var dim = axesDim.Sum();
        var cos = new float[positions * dim];
        var sin = new float[positions * dim];
        var column = 0;
        for (int axis = 0; axis < axes; axis++)
        {
            FillAxis(cos, sin, dim, column, axesDim[axis], ids, axes, axis, theta, RotaryPairing.Interleaved, precision);
            column += axesDim[axis];
        }
        return new RotaryTables(cos, sin, positions, dim);
    }

    /// <summary>Flux's <c>FluxPosEmbed(theta=10000, axes_dims_rope)</c> of the joint id rows
    /// (<c>cat(txt_ids, img_ids)</c>, [S, 3]), in float64 as diffusers computes it on CUDA and CPU.</summary>
    public static RotaryTables Flux(ReadOnlySpan<float> ids, IReadOnlyList<int> axesDim) =>
        MultiAxis(ids, axesDim, 10000, AnglePrecision.Float64);

    /// <summary>
    /// The table of a latent grid of <paramref name="frames"/> × <paramref name="height"/> ×
    /// <paramref name="width"/> patches: token n = (f, i, j) row-major has the id (f, i, j), rotated per
    /// axis with <paramref name="axesDim"/>, in float32 as diffusers computes it. Result
    /// [frames·height·width, Σ axesDim]. This is HunyuanVideo's <c>HunyuanVideoRotaryPosEmbed</c>
    /// (<c>rope_axes_dim</c>, <c>rope_theta</c> 256) and CogVideoX's <c>get_3d_rotary_pos_embed</c>
    /// (theta 10000, axes head_dim/4, 3·head_dim/8, 3·head_dim/8) when the pipeline's crop region is the
    /// whole grid; other CogVideoX crops give fractional grid coordinates, for
    /// <see cref="MultiAxis"/> with <see cref="AnglePrecision.Float32"/>.
    /// </summary>
    public static RotaryTables VideoGrid(int frames, int height, int width, IReadOnlyList<int> axesDim, double theta)
    {
        ArgumentNullException.ThrowIfNull(axesDim);
        if (axesDim.Count != 3) throw new ArgumentException($"a video grid has 3 axes (t, y, x), got {axesDim.Count} sizes", nameof(axesDim));
        if (frames <= 0) throw new ArgumentOutOfRangeException(nameof(frames), frames, "must be positive");
        if (height <= 0) throw new ArgumentOutOfRangeException(nameof(height), height, "must be positive");
        if (width <= 0) throw new ArgumentOutOfRangeException(nameof(width), width, "must be positive");
        var ids = new float[frames * height * width * 3];
        var n = 0;
        for (int f = 0; f < frames; f++)
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        {
            ids[n++] = f;
            ids[n++] = i;
            ids[n++] = j;
        }
        return MultiAxis(ids, axesDim, theta, AnglePrecision.Float32);
    }

    /// <summary>Writes the <paramref name="axisDim"/> columns starting at <paramref name="column"/> of
    /// every row of [rows, tableDim] cos/sin tables, row s rotating by
    /// <c>coordinates[s · stride + offset]</c>.</summary>
    static void FillAxis(float[] cos, float[] sin, int tableDim, int column, int axisDim, ReadOnlySpan<float> coordinates,
        int stride, int offset, double theta, RotaryPairing pairing, AnglePrecision precision)
    {
        var pairs = axisDim / 2;
        var rows = coordinates.Length / stride;
        var frequencies = Frequencies(axisDim, theta, precision);
        // Positions repeat down the rows (an image row's index on every token of the row, the text's zeros):
        // each distinct one (by its bits) is computed once and copied to the rows that repeat it.
        var firstRowWith = new Dictionary<int, int>();
        for (int s = 0; s < rows; s++)
        {
            var position = coordinates[s * stride + offset];
            var rowStart = s * tableDim + column;
            if (firstRowWith.TryGetValue(BitConverter.SingleToInt32Bits(position), out var earlier))
            {
                Array.Copy(cos, earlier * tableDim + column, cos, rowStart, axisDim);
                Array.Copy(sin, earlier * tableDim + column, sin, rowStart, axisDim);
                continue;
            }
            firstRowWith[BitConverter.SingleToInt32Bits(position)] = s;
            for (int k = 0; k < pairs; k++)
            {
                // float32: the outer product and the cos/sin stay float32 tensors in diffusers.
                var angle = precision == AnglePrecision.Float32
                    ? (float)(position * (float)frequencies[k])
                    : position * frequencies[k];
                var cosine = (float)Math.Cos(angle);
                var sine = (float)Math.Sin(angle);
                var (first, second) = pairing == RotaryPairing.Interleaved ? (2 * k, 2 * k + 1) : (k, k + pairs);
                cos[rowStart + first] = cos[rowStart + second] = cosine;
                sin[rowStart + first] = sin[rowStart + second] = sine;
            }
        }
    }

    static void CheckAxisDim(int dim, string parameterName)
    {
        if (dim <= 0 || dim % 2 != 0)
            throw new ArgumentOutOfRangeException(parameterName, dim, "a rotary table needs a positive even number of channels per axis");
    }

    static void CheckTheta(double theta)
    {
        if (!(theta > 0)) throw new ArgumentOutOfRangeException(nameof(theta), theta, "theta must be positive");
    }

    /// <summary>θ^(−2k/dim) for k &lt; dim/2, each stage (2k/dim, the power, the reciprocal) rounded to the
    /// given precision as diffusers' tensor of that dtype is.</summary>
    static double[] Frequencies(int dim, double theta, AnglePrecision precision)
    {
        var frequencies = new double[dim / 2];
        for (int k = 0; k < frequencies.Length; k++)
        {
            if (precision == AnglePrecision.Float32)
            {
                var exponent = (float)(2 * k) / dim;
                var power = (float)Math.Pow((float)theta, exponent);
                frequencies[k] = 1f / power;
            }
            else
            {
                frequencies[k] = 1.0 / Math.Pow(theta, (double)(2 * k) / dim);
            }
        }
        return frequencies;
    }
}
