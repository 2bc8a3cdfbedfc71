using XDit.Nn.Embeddings;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Host-computed embedding tables (timestep, sine-cosine position, rotary, T5 buckets) against
/// the activations and buffers diffusers 0.32 produced for the golden cases, and against fp64
/// formulas and an independent bucket implementation written here.</summary>
[TestFixture]
public class EmbeddingTests
{
    // ---- timestep projection --------------------------------------------------------------------

    /// <summary>(case, debug activation, input tensor, factor the model applies first, dim) of every
    /// timestep projection in the golden debug files.</summary>
    static IEnumerable<TestCaseData> TimestepProjections()
    {
        object[] Case(string golden, string activation, string input, float factor = 1, int dim = 256) =>
            [golden, activation, input, factor, dim];
        yield return new TestCaseData(Case("pixart_alpha", "adaln_single.emb.time_proj", "timestep"));
        yield return new TestCaseData(Case("pixart_alpha", "adaln_single.emb.additional_condition_proj", "resolution"));
        yield return new TestCaseData(Case("pixart_alpha", "adaln_single.emb.additional_condition_proj#1", "aspect_ratio"));
        yield return new TestCaseData(Case("pixart_sigma", "adaln_single.emb.time_proj", "timestep"));
        yield return new TestCaseData(Case("sd3", "time_text_embed.time_proj", "timestep"));
        yield return new TestCaseData(Case("flux_dev", "time_text_embed.time_proj", "timestep", factor: 1000));
        yield return new TestCaseData(Case("flux_dev", "time_text_embed.time_proj#1", "guidance", factor: 1000));
        yield return new TestCaseData(Case("hunyuanvideo", "time_text_embed.time_proj", "timestep"));
        yield return new TestCaseData(Case("hunyuanvideo", "time_text_embed.time_proj#1", "guidance"));
        yield return new TestCaseData(Case("hunyuanvideo", "context_embedder.time_text_embed.time_proj", "timestep"));
        yield return new TestCaseData(Case("cogvideox", "time_proj", "timestep", dim: 32));
    }

    [TestCaseSource(nameof(TimestepProjections))]
    public void TimestepProjectionMatchesDiffusers(string golden, string activation, string input, float factor, int dim)
    {
        var inputs = GoldenTensors.Load(GoldenFile(golden, "inputs.safetensors"));
        var debug = GoldenTensors.Load(GoldenFile(golden, "debug.safetensors"));
        // The models pass the flattened input (int64 timesteps converted), scaled in float32 first.
        var timesteps = inputs.Floats(input).Select(t => t * factor).ToArray();
        var expected = debug.Floats(activation);
        Assert.That(debug.Shape(activation), Is.EqualTo(new long[] { timesteps.Length, dim }));

        // Every DiT in diffusers builds its Timesteps with flip_sin_to_cos=True, downscale_freq_shift=0.
        var actual = TimestepEmbedding.Sinusoidal(timesteps, dim, flipSinToCos: true, downscaleFreqShift: 0);

        // ~2e-8 (sin/cos last-ulp differences); a correctly rounded exp instead of PyTorch's lands at 4e-7..3e-5.
        Assert.That(Reference.RelativeL2(actual, expected), Is.LessThan(1e-7), $"{golden} {activation}");
    }

    [TestCase(7, false, 1.0, 1.0)]
    [TestCase(8, true, 0.0, 2.5)]
    [TestCase(1, true, 0.0, 1.0)]
    public void TimestepEmbeddingFollowsTheFormula(int dim, bool flip, double shift, double scale)
    {
        // Small timesteps keep the float32 angle rounding far below the tolerance.
        float[] timesteps = [0, 0.25f, 3, 17.5f];
        var half = dim / 2;
        var expected = new double[timesteps.Length * dim]; // the odd column stays 0
        for (int n = 0; n < timesteps.Length; n++)
        for (int k = 0; k < half; k++)
        {
            var angle = scale * timesteps[n] * Math.Exp(-Math.Log(10000) * k / (half - shift));
            expected[n * dim + (flip ? half : 0) + k] = Math.Sin(angle);
            expected[n * dim + (flip ? 0 : half) + k] = Math.Cos(angle);
        }

        var actual = TimestepEmbedding.Sinusoidal(timesteps, dim, flip, shift, scale);

        Assert.That(Reference.RelativeL2(actual, expected), Is.LessThan(1e-6));
        if (dim % 2 == 1)
            for (int n = 0; n < timesteps.Length; n++)
                Assert.That(actual[n * dim + dim - 1], Is.Zero, "padding column");
    }

    /// <summary>The device computation (angles and sin/cos as tensor ops, so that a captured step can read
    /// its timesteps from device memory) equals the host table bit for bit, large angles included.</summary>
    [TestCase(6, true, 0.0, 1.0)]
    [TestCase(7, false, 1.0, 2.5)]
    [TestCase(256, true, 0.0, 1.0)]
    public void TimestepEmbeddingTensorHoldsTheTable(int dim, bool flip, double shift, double scale)
    {
        using var context = Contexts.Cpu();
        CheckDeviceTable(context, dim, flip, shift, scale);
    }

    [TestCase(256, true, 0.0, 1.0)]
    [TestCase(7, false, 1.0, 2.5)]
    [Category("GPU")]
    public void CudaTimestepEmbeddingHoldsTheTable(int dim, bool flip, double shift, double scale)
    {
        using var cuda = Contexts.CudaOrIgnore();
        CheckDeviceTable(cuda, dim, flip, shift, scale);
    }

    static void CheckDeviceTable(DeviceContext context, int dim, bool flip, double shift, double scale)
    {
        float[] timesteps = [999, 1, 0, 0.25f, 752, 3504, 6000, 937.5f, 1e-3f];
        using var tensor = TimestepEmbedding.Sinusoidal(context, timesteps, dim, flip, shift, scale);
        Assert.That(tensor.Shape.ToArray(), Is.EqualTo(new long[] { timesteps.Length, dim }));
        Assert.That(tensor.DType, Is.EqualTo(DType.F32));
        Assert.That(tensor.ToArray<float>(), Is.EqualTo(TimestepEmbedding.Sinusoidal(timesteps, dim, flip, shift, scale)));
    }

    [Test]
    public void TimestepEmbeddingRejectsAZeroFrequencyDenominator()
    {
        var error = Assert.Throws<ArgumentException>(() => TimestepEmbedding.Sinusoidal([1f], 2, false, 1));
        Assert.That(error!.Message, Does.Contain("dim 2"));
    }

    // ---- sine-cosine position tables ------------------------------------------------------------

    /// <summary>PixArt adds the table to the projected patches; the debug file has the sum and the
    /// projection, so their difference is the table (up to the rounding of the sum).</summary>
    [TestCase("pixart_alpha", 48, 1.0)]  // interpolation_scale null -> max(sample_size // 64, 1)
    [TestCase("pixart_sigma", 32, 2.0)]
    public void PixArtPositionTableMatchesDiffusers(string golden, int innerDim, double interpolationScale)
    {
        var debug = GoldenTensors.Load(GoldenFile(golden, "debug.safetensors"));
        var table = AddedPositionTable(debug, innerDim, out var gridHeight, out var gridWidth);
        Assert.That((gridHeight, gridWidth), Is.EqualTo((4, 4))); // 8x8 latent, patch 2

        // base_size = sample_size / patch_size = 8 / 2
        var actual = SinCosPositionEmbedding.TwoDimensional(innerDim, gridHeight, gridWidth, 4, interpolationScale);

        Assert.That(Reference.RelativeL2(actual, table), Is.LessThan(1e-6));
    }

    [Test]
    public void Sd3StoredTableIsTheSinCosTableAndItsCropIsWhatTheModelAdds()
    {
        const int maxSize = 16, innerDim = 32; // pos_embed_max_size, heads x head_dim
        var weights = GoldenTensors.Load(GoldenFile("sd3", "diffusion_pytorch_model.safetensors"));
        var stored = weights.Floats("pos_embed.pos_embed");
        Assert.That(weights.Shape("pos_embed.pos_embed"), Is.EqualTo(new long[] { 1, maxSize * maxSize, innerDim }));

        // PatchEmbed(height=sample_size 8, patch 2): base_size 4, interpolation_scale 1, grid pos_embed_max_size.
        var full = SinCosPositionEmbedding.TwoDimensional(innerDim, maxSize, maxSize, 4, 1);
        Assert.That(Reference.RelativeL2(full, stored), Is.LessThan(1e-7), "stored buffer");

        var debug = GoldenTensors.Load(GoldenFile("sd3", "debug.safetensors"));
        var added = AddedPositionTable(debug, innerDim, out var gridHeight, out var gridWidth);
        var crop = SinCosPositionEmbedding.CropCenter(stored, maxSize, gridHeight, gridWidth);
        Assert.That(Reference.RelativeL2(crop, added), Is.LessThan(1e-6), "cropped table");

        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var device = Tensor.FromArray(context, stored, 1, maxSize * maxSize, innerDim);
        var deviceCrop = SinCosPositionEmbedding.CropCenter(device, gridHeight, gridWidth);
        Assert.That(deviceCrop.Shape.ToArray(), Is.EqualTo(new long[] { gridHeight * gridWidth, innerDim }));
        Assert.That(deviceCrop.ToArray<float>(), Is.EqualTo(crop), "tensor crop");
    }

    [Test]
    public void CropCenterTakesTheMiddleWindowRoundedDown()
    {
        // 5x5 grid, 2 channels holding (row, column): a 2x3 crop starts at row 1, column 1.
        var table = new float[5 * 5 * 2];
        for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++)
            (table[(r * 5 + c) * 2], table[(r * 5 + c) * 2 + 1]) = (r, c);

        var crop = SinCosPositionEmbedding.CropCenter(table, 5, 2, 3);

        Assert.That(crop, Is.EqualTo(new float[] { 1, 1, 1, 2, 1, 3, 2, 1, 2, 2, 2, 3 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => SinCosPositionEmbedding.CropCenter(table, 5, 6, 1));
    }

    [Test]
    public void LattePositionTablesMatchDiffusers()
    {
        var outputs = GoldenTensors.Load(GoldenFile("latte", "outputs.safetensors"));
        // inner 32, 8x8 latent / patch 2, base_size 4, interpolation_scale max(8 // 64, 1) = 1; 4 frames.
        var spatial = SinCosPositionEmbedding.TwoDimensional(32, 4, 4, 4, 1);
        var temporal = SinCosPositionEmbedding.OneDimensional(32, [0, 1, 2, 3]);

        Assert.That(Reference.RelativeL2(spatial, outputs.Floats("spatial_pos_embed")), Is.LessThan(1e-7), "spatial");
        Assert.That(Reference.RelativeL2(temporal, outputs.Floats("temp_pos_embed")), Is.LessThan(1e-7), "temporal");
    }

    [Test]
    public void TwoDimensionalTableFollowsTheFormulaOnAnUnevenGrid()
    {
        const int dim = 16, height = 3, width = 5;
        const double baseSize = 4, interpolation = 1.5;
        var expected = new double[height * width * dim];
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        for (int k = 0; k < dim / 4; k++)
        {
            var omega = Math.Pow(10000, -k / (dim / 4.0));
            var x = j / (width / baseSize) / interpolation; // first half: the column coordinate
            var y = i / (height / baseSize) / interpolation;
            var row = (i * width + j) * dim;
            expected[row + k] = Math.Sin(x * omega);
            expected[row + dim / 4 + k] = Math.Cos(x * omega);
            expected[row + dim / 2 + k] = Math.Sin(y * omega);
            expected[row + 3 * dim / 4 + k] = Math.Cos(y * omega);
        }

        var actual = SinCosPositionEmbedding.TwoDimensional(dim, height, width, baseSize, interpolation);

        Assert.That(Reference.RelativeL2(actual, expected), Is.LessThan(1e-6));
        using var context = Contexts.Cpu();
        using var tensor = SinCosPositionEmbedding.TwoDimensional(context, dim, height, width, baseSize, interpolation);
        Assert.That(tensor.Shape.ToArray(), Is.EqualTo(new long[] { height * width, dim }));
        Assert.That(tensor.ToArray<float>(), Is.EqualTo(actual), "assembled on the device from the rows' and columns' halves");
        // A band of rows (PipeFusion's) is those rows of the whole grid's table, not a smaller grid's.
        var band = SinCosPositionEmbedding.TwoDimensional(dim, height, width, baseSize, interpolation, rowStart: 1, rowCount: 2);
        Assert.That(Reference.RelativeL2(band, expected.AsSpan(width * dim, 2 * width * dim)), Is.LessThan(1e-6));
        using var bandTensor = SinCosPositionEmbedding.TwoDimensional(context, dim, height, width, baseSize, interpolation, rowStart: 1, rowCount: 2);
        Assert.That(bandTensor.ToArray<float>(), Is.EqualTo(band));
        Assert.That(() => SinCosPositionEmbedding.TwoDimensional(dim, height, width, baseSize, interpolation, rowStart: 2, rowCount: 2),
            Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    // ---- rotary tables --------------------------------------------------------------------------

    [TestCase("flux_dev")]
    [TestCase("flux_schnell")]
    public void FluxRotaryTablesMatchDiffusers(string golden)
    {
        var inputs = GoldenTensors.Load(GoldenFile(golden, "inputs.safetensors"));
        var outputs = GoldenTensors.Load(GoldenFile(golden, "outputs.safetensors"));
        var ids = inputs.Floats("txt_ids").Concat(inputs.Floats("img_ids")).ToArray();

        var tables = RotaryEmbedding.Flux(ids, [4, 6, 6]); // axes_dims_rope

        Assert.That((tables.Positions, tables.Dim), Is.EqualTo((22, 16)));
        Assert.That(Reference.RelativeL2(tables.Cos, outputs.Floats("rope_cos")), Is.LessThan(1e-7), "cos");
        Assert.That(Reference.RelativeL2(tables.Sin, outputs.Floats("rope_sin")), Is.LessThan(1e-7), "sin");
    }

    [Test]
    public void HunyuanVideoRotaryTablesMatchDiffusers()
    {
        var outputs = GoldenTensors.Load(GoldenFile("hunyuanvideo", "outputs.safetensors"));
        // hidden_states [2, 4, 3, 8, 8], patch 2, patch_t 1: a 3 x 4 x 4 grid; rope_axes_dim, rope_theta.
        var tables = RotaryEmbedding.VideoGrid(3, 4, 4, [4, 6, 6], 256);

        Assert.That(Reference.RelativeL2(tables.Cos, outputs.Floats("rope_cos")), Is.LessThan(1e-7), "cos");
        Assert.That(Reference.RelativeL2(tables.Sin, outputs.Floats("rope_sin")), Is.LessThan(1e-7), "sin");
    }

    /// <summary>The CogVideoX pipeline's table: 64x96 px at 3 latent frames is a 4 x 6 patch grid equal
    /// to the base grid, so the crop region is the whole grid and the linspace grids are the integers.</summary>
    [Test]
    public void CogVideoXRotaryTablesMatchThePipeline()
    {
        var inputs = GoldenTensors.Load(GoldenFile("cogvideox", "inputs.safetensors"));
        // head_dim 16: t gets 16 / 4 = 4 channels, rows and columns 16 / 8 * 3 = 6 each; theta 10000.
        var tables = RotaryEmbedding.VideoGrid(3, 4, 6, [4, 6, 6], 10000);

        Assert.That(Reference.RelativeL2(tables.Cos, inputs.Floats("image_rotary_emb_cos")), Is.LessThan(1e-7), "cos");
        Assert.That(Reference.RelativeL2(tables.Sin, inputs.Floats("image_rotary_emb_sin")), Is.LessThan(1e-7), "sin");
    }

    [TestCase(RotaryPairing.Interleaved, AnglePrecision.Float64, 1e-7)]
    [TestCase(RotaryPairing.Halves, AnglePrecision.Float64, 1e-7)]
    [TestCase(RotaryPairing.Halves, AnglePrecision.Float32, 1e-5)]
    public void OneAxisTableFollowsTheFormula(RotaryPairing pairing, AnglePrecision precision, double tolerance)
    {
        const int dim = 12;
        const double theta = 10000;
        float[] positions = [0, 1, 2.5f, 7, 40, 131];
        var expectedCos = new double[positions.Length * dim];
        var expectedSin = new double[positions.Length * dim];
        for (int s = 0; s < positions.Length; s++)
        for (int k = 0; k < dim / 2; k++)
        {
            var angle = positions[s] * Math.Pow(theta, -2.0 * k / dim);
            foreach (var column in pairing == RotaryPairing.Interleaved ? new[] { 2 * k, 2 * k + 1 } : new[] { k, k + dim / 2 })
            {
                expectedCos[s * dim + column] = Math.Cos(angle);
                expectedSin[s * dim + column] = Math.Sin(angle);
            }
        }

        var tables = RotaryEmbedding.OneAxis(dim, positions, theta, pairing, precision);

        Assert.That(Reference.RelativeL2(tables.Cos, expectedCos), Is.LessThan(tolerance), "cos");
        Assert.That(Reference.RelativeL2(tables.Sin, expectedSin), Is.LessThan(tolerance), "sin");
    }

    [Test]
    public void RotaryTablesBecomeTensors()
    {
        using var context = Contexts.Cpu();
        var tables = RotaryEmbedding.OneAxis(4, [0, 3, 9], 10000, RotaryPairing.Interleaved, AnglePrecision.Float64);
        var (cos, sin) = tables.ToTensors(context);
        using (cos)
        using (sin)
        {
            Assert.That(cos.Shape.ToArray(), Is.EqualTo(new long[] { 3, 4 }));
            Assert.That(cos.ToArray<float>(), Is.EqualTo(tables.Cos));
            Assert.That(sin.ToArray<float>(), Is.EqualTo(tables.Sin));
        }
    }

    [Test]
    public void RotaryRejectsOddAxes()
    {
        var error = Assert.Throws<ArgumentOutOfRangeException>(() => RotaryEmbedding.Flux(new float[6], [4, 5]));
        Assert.That(error!.ParamName, Is.EqualTo("axesDim"));
        Assert.Throws<ArgumentException>(() => RotaryEmbedding.Flux(new float[7], [4, 6, 6]));
    }

    // ---- T5 relative position buckets -----------------------------------------------------------

    [Test]
    public void T5BucketsMatchAnIndependentImplementationFor140Tokens()
    {
        const int tokens = 140; // offsets up to 139 reach past max_distance 128
        var actual = T5RelativePositionBuckets.Compute(tokens, tokens);
        for (int q = 0; q < tokens; q++)
        for (int k = 0; k < tokens; k++)
            Assert.That(actual[q * tokens + k], Is.EqualTo(IndependentT5Bucket(k - q, bidirectional: true)), $"query {q}, key {k}");

        using var context = Contexts.Cpu();
        using var tensor = T5RelativePositionBuckets.Compute(context, tokens, tokens);
        Assert.That(tensor.DType, Is.EqualTo(DType.I32));
        Assert.That(tensor.ToArray<int>(), Is.EqualTo(actual));
    }

    [Test]
    public void T5DecoderBucketsMatchAnIndependentImplementation()
    {
        for (int relative = -300; relative <= 300; relative++)
            Assert.That(T5RelativePositionBuckets.Bucket(relative, bidirectional: false),
                Is.EqualTo(IndependentT5Bucket(relative, bidirectional: false)), $"relative position {relative}");
    }

    /// <summary>Worked by hand from the formula (32 buckets, 16 per direction, 8 exact, max distance 128):
    /// e.g. +12 → 16 + 8 + ⌊ln(1.5)/ln(16)·8⌋ = 16 + 8 + ⌊1.17⌋ = 25.</summary>
    [TestCase(0, true, 0)]
    [TestCase(-1, true, 1)]
    [TestCase(1, true, 17)]
    [TestCase(-7, true, 7)]
    [TestCase(7, true, 23)]
    [TestCase(8, true, 24)]
    [TestCase(-12, true, 9)]
    [TestCase(12, true, 25)]
    [TestCase(16, true, 26)]
    [TestCase(-64, true, 14)]
    [TestCase(-127, true, 15)]
    [TestCase(-128, true, 15)]
    [TestCase(139, true, 31)]
    [TestCase(5, false, 0)]
    [TestCase(-5, false, 5)]
    [TestCase(-20, false, 17)]
    [TestCase(-200, false, 31)]
    public void T5BucketsOfHandCheckedOffsets(int relative, bool bidirectional, int bucket) =>
        Assert.That(T5RelativePositionBuckets.Bucket(relative, bidirectional), Is.EqualTo(bucket));

    /// <summary>transformers' <c>_relative_position_bucket</c> (32 buckets, max distance 128) restated
    /// from its formula with float (MathF) arithmetic, independently of the engine's code.</summary>
    static int IndependentT5Bucket(int relative, bool bidirectional)
    {
        int buckets = 32, offset = 0, n;
        if (bidirectional)
        {
            buckets /= 2;
            offset = relative > 0 ? buckets : 0;
            n = Math.Abs(relative);
        }
        else
        {
            n = -Math.Min(relative, 0);
        }
        var exact = buckets / 2;
        if (n < exact) return offset + n;
        var logBucket = MathF.Log(n / (float)exact) / (float)Math.Log(128.0 / exact) * (buckets - exact);
        return offset + Math.Min(exact + (int)logBucket, buckets - 1);
    }

    // ---- golden data ----------------------------------------------------------------------------

    static string GoldenFile(string golden, string file) => Path.Combine(GoldenTensors.CaseFolder(golden), file);

    /// <summary>The position table a PatchEmbed added: its output [B, N, C] minus its projection
    /// [B, C, h, w] read as [B, N, C], from the first sample.</summary>
    static float[] AddedPositionTable(GoldenTensors debug, int channels, out int gridHeight, out int gridWidth)
    {
        var projectionShape = debug.Shape("pos_embed.proj");
        Assert.That(projectionShape[1], Is.EqualTo(channels), "pos_embed.proj channels");
        gridHeight = (int)projectionShape[2];
        gridWidth = (int)projectionShape[3];
        var tokens = gridHeight * gridWidth;
        var sum = debug.Floats("pos_embed");
        var projection = debug.Floats("pos_embed.proj");
        var table = new float[tokens * channels];
        for (int n = 0; n < tokens; n++)
        for (int c = 0; c < channels; c++)
            table[n * channels + c] = sum[n * channels + c] - projection[c * tokens + n];
        return table;
    }
}
