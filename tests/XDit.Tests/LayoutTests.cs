using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The layout ops against index arithmetic written here (where each element must land), and
/// against diffusers' own patch and pack steps in the golden data.</summary>
[TestFixture]
public class LayoutTests
{
    /// <summary>1, 2, 3, ...: every element distinct, so any misplaced element shows.</summary>
    static float[] Distinct(long count) => Enumerable.Range(1, (int)count).Select(i => (float)i).ToArray();

    // ---- Cat, Split, Chunk --------------------------------------------------------------------------

    [Test]
    public void CatJoinsContiguousAndStridedInputs()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Distinct(2 * 1 * 5);
        var b = Distinct(2 * 5 * 3).Select(v => v + 100).ToArray();
        var c = Distinct(2 * 2 * 5).Select(v => v + 200).ToArray();
        var ta = Tensor.FromArray(context, a, 2, 1, 5);
        var tb = Tensor.FromArray(context, b, 2, 5, 3).Transpose(1, 2); // [2, 3, 5], strided
        var tc = Tensor.FromArray(context, c, 2, 2, 5);
        var joined = Layout.Cat(1, ta, tb, tc);
        Assert.That(joined.Shape.ToArray(), Is.EqualTo(new long[] { 2, 6, 5 }));
        var values = joined.ToArray<float>();
        for (int n = 0; n < 2; n++)
        for (int i = 0; i < 6; i++)
        for (int k = 0; k < 5; k++)
        {
            var expected = i < 1 ? a[(n * 1 + i) * 5 + k]
                : i < 4 ? b[(n * 5 + k) * 3 + (i - 1)]
                : c[(n * 2 + (i - 4)) * 5 + k];
            Assert.That(values[(n * 6 + i) * 5 + k], Is.EqualTo(expected), $"[{n}, {i}, {k}]");
        }

        var x = Distinct(2 * 3);
        var y = Distinct(2 * 4).Select(v => -v).ToArray();
        var last = Layout.Cat(-1, Tensor.FromArray(context, x, 2, 3), Tensor.FromArray(context, y, 2, 4)).ToArray<float>();
        for (int r = 0; r < 2; r++)
        for (int k = 0; k < 7; k++)
            Assert.That(last[r * 7 + k], Is.EqualTo(k < 3 ? x[r * 3 + k] : y[r * 4 + k - 3]), $"[{r}, {k}]");
    }

    [Test]
    public void CatIntoAPoisonedStridedOutputWritesOnlyItsElements()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Distinct(3 * 1 * 4);
        var y = Distinct(3 * 3 * 4).Select(v => v + 50).ToArray();
        var buffer = Tensor.Full(context, DType.F32, double.NaN, 3, 8, 4);
        Layout.Cat(1, [Tensor.FromArray(context, x, 3, 1, 4), Tensor.FromArray(context, y, 3, 3, 4)],
            buffer.Slice(1, 0, 8, step: 2));
        var values = buffer.ToArray<float>();
        for (int n = 0; n < 3; n++)
        for (int row = 0; row < 8; row++)
        for (int k = 0; k < 4; k++)
        {
            var actual = values[(n * 8 + row) * 4 + k];
            if (row % 2 == 1)
            {
                Assert.That(actual, Is.NaN, $"[{n}, {row}, {k}] is not part of the output");
                continue;
            }
            var i = row / 2;
            Assert.That(actual, Is.EqualTo(i < 1 ? x[n * 4 + k] : y[(n * 3 + i - 1) * 4 + k]), $"[{n}, {row}, {k}]");
        }
    }

    [Test]
    public void SplitAndChunkAreViewsOfTheSameMemory()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var data = Distinct(4 * 6);
        var t = Tensor.FromArray(context, data, 4, 6);
        var pieces = Layout.Split(t, 1, 1, 3, 2);
        Assert.That(pieces.Select(p => p.Shape.ToArray()), Is.EqualTo(new[] { new long[] { 4, 1 }, [4, 3], [4, 2] }));
        var starts = new[] { 0, 1, 4 };
        for (int p = 0; p < 3; p++)
        {
            var values = pieces[p].ToArray<float>();
            var width = (int)pieces[p].Size(1);
            for (int r = 0; r < 4; r++)
            for (int k = 0; k < width; k++)
                Assert.That(values[r * width + k], Is.EqualTo(data[r * 6 + starts[p] + k]), $"piece {p} [{r}, {k}]");
        }

        var rows = Layout.Chunk(t, 2, 0);
        Assert.That(rows.Select(p => p.Shape.ToArray()), Is.All.EqualTo(new long[] { 2, 6 }));
        Assert.That(rows[1].ToArray<float>(), Is.EqualTo(data[12..]));
        var columns = Layout.Chunk(t, 3, -1);
        Elementwise.Fill(columns[2], -7);
        var after = t.ToArray<float>();
        for (int i = 0; i < after.Length; i++)
            Assert.That(after[i], Is.EqualTo(i % 6 >= 4 ? -7f : data[i]), $"element {i} through the chunk view");
    }

    // ---- patch tokens -------------------------------------------------------------------------------

    [TestCase(2, 3, 6, 10, 2, false)]
    [TestCase(2, 5, 9, 6, 3, false)]
    [TestCase(2, 3, 6, 4, 2, true)]
    [TestCase(1, 1, 4, 4, 1, false)]
    public void PatchifyOrdersFeaturesChannelThenPatchRowThenPatchColumn(int batch, int channels, int height, int width, int p,
        bool channelsLastStorage)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var data = Distinct(batch * channels * height * width);
        // With NHWC storage the NCHW latent is a strided view: Patchify must not assume contiguity.
        var latent = channelsLastStorage
            ? Tensor.FromArray(context, data, batch, height, width, channels).Permute(0, 3, 1, 2)
            : Tensor.FromArray(context, data, batch, channels, height, width);
        float At(int b, int c, int y, int x) => channelsLastStorage
            ? data[((b * height + y) * width + x) * channels + c]
            : data[((b * channels + c) * height + y) * width + x];

        var tokens = Layout.Patchify(latent, p);
        int gh = height / p, gw = width / p, features = channels * p * p;
        Assert.That(tokens.Shape.ToArray(), Is.EqualTo(new long[] { batch, gh * gw, features }));
        var values = tokens.ToArray<float>();
        for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            var token = (y / p) * gw + x / p;
            var feature = (c * p + y % p) * p + x % p;
            Assert.That(values[((long)b * gh * gw + token) * features + feature], Is.EqualTo(At(b, c, y, x)), $"[{b}, {c}, {y}, {x}]");
        }
    }

    [Test]
    public void PatchifyFollowedByALinearLayerEqualsDiffusersConvProjection()
    {
        var folder = GoldenTensors.CaseFolder("pixart_alpha");
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var latent = GoldenTensors.ReadF32(Path.Combine(folder, "inputs.safetensors"), "hidden_states");
        var weight = GoldenTensors.ReadF32(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), "pos_embed.proj.weight");
        var bias = GoldenTensors.ReadF32(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), "pos_embed.proj.bias");
        var conv = GoldenTensors.ReadF32(Path.Combine(folder, "debug.safetensors"), "pos_embed.proj");
        long outChannels = weight.Shape[0], features = weight.Shape[1] * weight.Shape[2] * weight.Shape[3];
        long batch = conv.Shape[0], gh = conv.Shape[2], gw = conv.Shape[3];

        var tokens = Layout.Patchify(Tensor.FromArray(context, latent.Values, latent.Shape), (int)weight.Shape[2]);
        var projected = MatMul.Gemm(tokens, Tensor.FromArray(context, weight.Values, outChannels, features),
            Tensor.FromArray(context, bias.Values, outChannels)).ToArray<float>();
        // diffusers' conv output [B, out, gh, gw], read in token order [B, gh·gw, out].
        var expected = new float[projected.Length];
        for (long b = 0; b < batch; b++)
        for (long t = 0; t < gh * gw; t++)
        for (long o = 0; o < outChannels; o++)
            expected[(b * gh * gw + t) * outChannels + o] = conv.Values[(b * outChannels + o) * gh * gw + t];
        Assert.That(Reference.RelativeL2(projected, expected), Is.LessThan(1e-6));
    }

    [TestCase(2, 3, 6, 10, 2)]
    [TestCase(2, 5, 9, 6, 3)]
    public void UnpatchifyReadsFeaturesPatchRowThenPatchColumnThenChannel(int batch, int channels, int height, int width, int p)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        int gh = height / p, gw = width / p, features = p * p * channels;
        var data = Distinct(batch * gh * gw * features);
        var image = Layout.Unpatchify(Tensor.FromArray(context, data, batch, gh * gw, features), height, width, p, channels);
        Assert.That(image.Shape.ToArray(), Is.EqualTo(new long[] { batch, channels, height, width }));
        var values = image.ToArray<float>();
        for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            var token = (y / p) * gw + x / p;
            var feature = ((y % p) * p + x % p) * channels + c;
            Assert.That(values[((b * channels + c) * height + y) * width + x], Is.EqualTo(data[((long)b * gh * gw + token) * features + feature]),
                $"[{b}, {c}, {y}, {x}]");
        }
    }

    [TestCase("pixart_alpha")]
    [TestCase("sd3")]
    public void UnpatchifyReproducesDiffusersFinalLayerBitForBit(string name)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var projected = GoldenTensors.ReadF32(Path.Combine(folder, "debug.safetensors"), "proj_out");
        var sample = GoldenTensors.ReadF32(Path.Combine(folder, "outputs.safetensors"), "sample");
        int channels = (int)sample.Shape[1], height = (int)sample.Shape[2], width = (int)sample.Shape[3];
        var patch = (int)Math.Sqrt(projected.Shape[2] / channels);
        var image = Layout.Unpatchify(Tensor.FromArray(context, projected.Values, projected.Shape), height, width, patch, channels);
        Assert.That(image.Shape.ToArray(), Is.EqualTo(sample.Shape));
        Assert.That(image.ToArray<float>(), Is.EqualTo(sample.Values));
    }

    [Test]
    public void PatchifyAndUnpatchifyUseDifferentFeatureOrders()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var data = Distinct(1 * 3 * 4 * 4);
        var latent = Tensor.FromArray(context, data, 1, 3, 4, 4);
        var roundTrip = Layout.Unpatchify(Layout.Patchify(latent, 2), 4, 4, 2, 3).ToArray<float>();
        Assert.That(roundTrip, Is.Not.EqualTo(data), "(c, ph, pw) read back as (ph, pw, c) must scramble a 3-channel latent");
        Assert.That(Layout.FluxUnpack(Layout.Patchify(latent, 2), 4, 4).ToArray<float>(), Is.EqualTo(data));
    }

    // ---- Flux packing -------------------------------------------------------------------------------

    [Test]
    public void FluxPackMatchesIndexArithmeticAndUnpackInvertsIt()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int batch = 2, channels = 3, height = 6, width = 4, gh = height / 2, gw = width / 2;
        var data = Distinct(batch * channels * height * width);
        var packed = Layout.FluxPack(Tensor.FromArray(context, data, batch, channels, height, width));
        Assert.That(packed.Shape.ToArray(), Is.EqualTo(new long[] { batch, gh * gw, 4 * channels }));
        var values = packed.ToArray<float>();
        for (int b = 0; b < batch; b++)
        for (int c = 0; c < channels; c++)
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        {
            var token = (y / 2) * gw + x / 2;
            var feature = c * 4 + (y % 2) * 2 + x % 2;
            Assert.That(values[(b * gh * gw + token) * 4 * channels + feature], Is.EqualTo(data[((b * channels + c) * height + y) * width + x]),
                $"[{b}, {c}, {y}, {x}]");
        }
        Assert.That(Layout.FluxUnpack(packed, height, width).ToArray<float>(), Is.EqualTo(data));
    }

    [Test]
    public void FluxPackAndUnpackReproduceThePipelineHelpersBitForBit()
    {
        var folder = GoldenTensors.CaseFolder("flux_dev");
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var inputs = Path.Combine(folder, "inputs.safetensors");
        var outputs = Path.Combine(folder, "outputs.safetensors");
        var latents = GoldenTensors.ReadF32(inputs, "latents_unpacked");
        var hidden = GoldenTensors.ReadF32(inputs, "hidden_states");
        var packed = Layout.FluxPack(Tensor.FromArray(context, latents.Values, latents.Shape));
        Assert.That(packed.Shape.ToArray(), Is.EqualTo(hidden.Shape));
        Assert.That(packed.ToArray<float>(), Is.EqualTo(hidden.Values));

        var sample = GoldenTensors.ReadF32(outputs, "sample");
        var unpacked = GoldenTensors.ReadF32(outputs, "sample_unpacked");
        var image = Layout.FluxUnpack(Tensor.FromArray(context, sample.Values, sample.Shape), (int)unpacked.Shape[2], (int)unpacked.Shape[3]);
        Assert.That(image.Shape.ToArray(), Is.EqualTo(unpacked.Shape));
        Assert.That(image.ToArray<float>(), Is.EqualTo(unpacked.Values));
    }

    // ---- Ulysses ------------------------------------------------------------------------------------

    [TestCase(2)]
    [TestCase(3)]
    public void UlyssesAllToAllOnSimulatedRanksGivesHeadSlicesAndTheInverseRestoresTheInput(int degree)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int batch = 2, shard = 3, headsPerRank = 2, headDim = 5;
        int sequence = degree * shard, heads = degree * headsPerRank;
        var full = Distinct(batch * sequence * heads * headDim);
        float At(int b, int t, int h, int d) => full[((b * sequence + t) * heads + h) * headDim + d];
        var fullTensor = Tensor.FromArray(context, full, batch, sequence, heads, headDim);

        // Rank q holds tokens q·s .. (q+1)·s − 1: a strided view of the full sequence (batch 2).
        var sent = Enumerable.Range(0, degree)
            .Select(q => Layout.UlyssesScatterHeads(fullTensor.Narrow(1, q * shard, shard), degree))
            .ToArray();
        Assert.That(sent[0].Shape.ToArray(), Is.EqualTo(new long[] { degree, batch, shard, headsPerRank, headDim }));
        Assert.That(sent[0].IsContiguous);
        var gathered = AllToAll(context, sent).Select(Layout.UlyssesGatherSequence).ToArray();
        for (int r = 0; r < degree; r++)
        {
            Assert.That(gathered[r].Shape.ToArray(), Is.EqualTo(new long[] { batch, sequence, headsPerRank, headDim }));
            var values = gathered[r].ToArray<float>();
            for (int b = 0; b < batch; b++)
            for (int t = 0; t < sequence; t++)
            for (int h = 0; h < headsPerRank; h++)
            for (int d = 0; d < headDim; d++)
                Assert.That(values[((b * sequence + t) * headsPerRank + h) * headDim + d], Is.EqualTo(At(b, t, r * headsPerRank + h, d)),
                    $"rank {r} [{b}, {t}, {h}, {d}]");
        }

        var returned = AllToAll(context, gathered.Select(g => Layout.UlyssesScatterSequence(g, degree)).ToArray())
            .Select(Layout.UlyssesGatherHeads)
            .ToArray();
        for (int q = 0; q < degree; q++)
        {
            using var own = fullTensor.Narrow(1, q * shard, shard);
            Assert.That(returned[q].Shape.ToArray(), Is.EqualTo(own.Shape.ToArray()));
            Assert.That(returned[q].ToArray<float>(), Is.EqualTo(own.ToArray<float>()), $"rank {q} after the round trip");
        }
    }

    /// <summary>An equal-chunk all-to-all on the host: chunk r of rank q's buffer arrives at rank r as chunk q.</summary>
    static Tensor[] AllToAll(DeviceContext context, Tensor[] sendBuffers)
    {
        var degree = sendBuffers.Length;
        var shape = sendBuffers[0].Shape.ToArray();
        var chunk = (int)(sendBuffers[0].NumElements / degree);
        var sent = sendBuffers.Select(s => s.ToArray<float>()).ToArray();
        var received = new Tensor[degree];
        for (int r = 0; r < degree; r++)
        {
            var buffer = new float[chunk * degree];
            for (int q = 0; q < degree; q++) Array.Copy(sent[q], r * chunk, buffer, q * chunk, chunk);
            received[r] = Tensor.FromArray(context, buffer, shape);
        }
        return received;
    }

    [Test]
    public void UlyssesBuffersMatchIndexArithmeticAndFillPoisonedOutputs()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int n = 3, batch = 2, s = 2, h = 2, d = 3;
        var x = Distinct(batch * s * n * h * d);

        var scattered = Tensor.Full(context, DType.F32, double.NaN, n, batch, s, h, d);
        Layout.UlyssesScatterHeads(Tensor.FromArray(context, x, batch, s, n * h, d), n, scattered);
        var sv = scattered.ToArray<float>();
        for (int r = 0; r < n; r++)
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < s; i++)
        for (int k = 0; k < h; k++)
        for (int e = 0; e < d; e++)
            Assert.That(sv[(((r * batch + b) * s + i) * h + k) * d + e], Is.EqualTo(x[((b * s + i) * n * h + r * h + k) * d + e]),
                $"heads: chunk {r} [{b}, {i}, {k}, {e}]");

        var bySequence = Tensor.Full(context, DType.F32, double.NaN, n, batch, s, h, d);
        Layout.UlyssesScatterSequence(Tensor.FromArray(context, x, batch, n * s, h, d), n, bySequence);
        var qv = bySequence.ToArray<float>();
        for (int r = 0; r < n; r++)
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < s; i++)
        for (int k = 0; k < h; k++)
        for (int e = 0; e < d; e++)
            Assert.That(qv[(((r * batch + b) * s + i) * h + k) * d + e], Is.EqualTo(x[((b * n * s + r * s + i) * h + k) * d + e]),
                $"sequence: chunk {r} [{b}, {i}, {k}, {e}]");

        // The gathers write into strided outputs: every other element of the last dimension of a NaN buffer.
        var received = Tensor.FromArray(context, x, n, batch, s, h, d);
        var sequenceBuffer = Tensor.Full(context, DType.F32, double.NaN, batch, n * s, h, 2 * d);
        Layout.UlyssesGatherSequence(received, sequenceBuffer.Slice(3, 0, 2 * d, step: 2));
        var gv = sequenceBuffer.ToArray<float>();
        var headBuffer = Tensor.Full(context, DType.F32, double.NaN, batch, s, n * h, 2 * d);
        Layout.UlyssesGatherHeads(received, headBuffer.Slice(3, 0, 2 * d, step: 2));
        var hv = headBuffer.ToArray<float>();
        for (int r = 0; r < n; r++)
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < s; i++)
        for (int k = 0; k < h; k++)
        for (int e = 0; e < 2 * d; e++)
        {
            var gathered = gv[((b * n * s + r * s + i) * h + k) * 2 * d + e];
            var withHeads = hv[((b * s + i) * n * h + r * h + k) * 2 * d + e];
            if (e % 2 == 1)
            {
                Assert.That(gathered, Is.NaN, "GatherSequence wrote outside its output");
                Assert.That(withHeads, Is.NaN, "GatherHeads wrote outside its output");
                continue;
            }
            var expected = x[(((r * batch + b) * s + i) * h + k) * d + e / 2];
            Assert.That(gathered, Is.EqualTo(expected), $"GatherSequence: chunk {r} [{b}, {i}, {k}, {e / 2}]");
            Assert.That(withHeads, Is.EqualTo(expected), $"GatherHeads: chunk {r} [{b}, {i}, {k}, {e / 2}]");
        }
    }

    // ---- PipeFusion bands ---------------------------------------------------------------------------

    // Expected values worked by hand from xDiT's rule: height = ⌈⌈rows/patches⌉ / multiple⌉·multiple,
    // bands = ⌈rows/height⌉, the last band takes the rest.
    [TestCase(128L, 4, 2, new long[] { 32, 32, 32, 32 }, false)]
    [TestCase(64L, 3, 2, new long[] { 22, 22, 20 }, false)]
    [TestCase(96L, 5, 4, new long[] { 20, 20, 20, 20, 16 }, false)]
    [TestCase(40L, 3, 4, new long[] { 16, 16, 8 }, false)]
    [TestCase(24L, 5, 1, new long[] { 5, 5, 5, 5, 4 }, false)]
    [TestCase(32L, 6, 4, new long[] { 8, 8, 8, 8 }, true)]
    [TestCase(12L, 5, 2, new long[] { 4, 4, 4 }, true)]
    [TestCase(8L, 16, 2, new long[] { 2, 2, 2, 2 }, true)]
    [TestCase(6L, 1, 2, new long[] { 6 }, false)]
    public void RowBandsRoundLikeXDit(long rows, int patches, int multiple, long[] heights, bool adjusted)
    {
        var plan = Layout.RowBands(rows, patches, multiple);
        Assert.That(plan.Heights, Is.EqualTo(heights));
        Assert.That(plan.Adjusted, Is.EqualTo(adjusted));
    }

    [TestCase(36L, 4, 8, "last band of 4 rows")]
    [TestCase(30L, 2, 4, "last band of 14 rows")]
    public void RowBandsRejectAHeightThatIsNotAMultiple(long rows, int patches, int multiple, string detail)
    {
        var error = Assert.Throws<ArgumentException>(() => Layout.RowBands(rows, patches, multiple))!;
        Assert.That(error.Message, Does.Contain($"{rows} latent rows").And.Contain(detail).And.Contain($"multiple of {multiple}"));
    }

    [Test]
    public void TokenBandsAreViewsOfGridRowsThatTileTheSequence()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int batch = 2, patch = 2, latentRows = 10, gridWidth = 3, features = 4, gridRows = latentRows / patch;
        var data = Distinct(batch * gridRows * gridWidth * features);
        var tokens = Tensor.FromArray(context, data, batch, gridRows * gridWidth, features);

        var band = Layout.TokenBand(tokens, gridWidth, 1, 2);
        Assert.That(band.Shape.ToArray(), Is.EqualTo(new long[] { batch, 2 * gridWidth, features }));
        var values = band.ToArray<float>();
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < 2 * gridWidth; t++)
        for (int f = 0; f < features; f++)
            Assert.That(values[(b * 2 * gridWidth + t) * features + f],
                Is.EqualTo(data[(b * gridRows * gridWidth + gridWidth + t) * features + f]), $"[{b}, {t}, {f}]");

        var plan = Layout.RowBands(latentRows, 3, patch);
        Assert.That(plan.Heights, Is.EqualTo(new long[] { 4, 4, 2 }));
        var bands = new List<Tensor>();
        long row = 0;
        foreach (var height in plan.Heights)
        {
            bands.Add(Layout.TokenBand(tokens, gridWidth, row, height / patch));
            row += height / patch;
        }
        Assert.That(Layout.Cat(1, bands.ToArray()).ToArray<float>(), Is.EqualTo(data));

        Elementwise.Fill(band, 0);
        Assert.That(tokens.ToArray<float>()[(gridWidth * features)..(3 * gridWidth * features)], Is.All.EqualTo(0f),
            "the band is a view of the tokens");
    }

    // ---- errors -------------------------------------------------------------------------------------

    [Test]
    public void InvalidShapesAreRejectedWithTheShapesInTheMessage()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Tensor.Zeros(context, DType.F32, 2, 3);
        string MessageOf(Action action) => Assert.Throws<ArgumentException>(() => action())!.Message;

        Assert.That(MessageOf(() => Layout.Cat(1, a, Tensor.Zeros(context, DType.F32, 3, 3))),
            Does.Contain("f32 [2, 3]").And.Contain("f32 [3, 3]"));
        Assert.That(MessageOf(() => Layout.Cat(0, a, Tensor.Zeros(context, DType.F16, 2, 3))), Does.Contain("f16 [2, 3]"));
        Assert.That(MessageOf(() => Layout.Cat(0, a, Tensor.Zeros(context, DType.F32, 2, 3, 1))), Does.Contain("[2, 3, 1]"));
        Assert.That(MessageOf(() => Layout.Cat(0)), Does.Contain("at least one"));
        Assert.That(MessageOf(() => Layout.Cat(0, [a, a], Tensor.Zeros(context, DType.F32, 4, 2))),
            Does.Contain("output (f32 [4, 2])").And.Contain("f32 [4, 3]"));
        // CPU contexts share host memory, so their tensors mix (in-process ranks rely on it).
        using (var other = Contexts.Cpu())
        using (var elsewhere = Tensor.Zeros(other, DType.F32, 2, 3))
        using (var joined = Layout.Cat(0, a, elsewhere))
            Assert.That(joined.Shape.ToArray(), Is.EqualTo(new long[] { 4, 3 }));

        Assert.That(MessageOf(() => Layout.Split(a, 1, 1, 1)), Does.Contain("[2, 3]").And.Contain("[1, 1]"));
        Assert.That(MessageOf(() => Layout.Split(a, 1, 4, -1)), Does.Contain("[4, -1]"));
        Assert.That(MessageOf(() => Layout.Chunk(a, 2, 1)), Does.Contain("[2, 3]").And.Contain("not divisible by 2"));

        var odd = Tensor.Zeros(context, DType.F32, 1, 3, 5, 4);
        Assert.That(MessageOf(() => Layout.Patchify(odd, 2)), Does.Contain("[1, 3, 5, 4]").And.Contain("patch size 2"));
        Assert.That(MessageOf(() => Layout.Patchify(a, 1)), Does.Contain("[2, 3]"));
        Assert.That(MessageOf(() => Layout.FluxPack(odd)), Does.StartWith("FluxPack").And.Contain("[1, 3, 5, 4]"));
        var tokens = Tensor.Zeros(context, DType.F32, 2, 12, 12);
        Assert.That(MessageOf(() => Layout.Unpatchify(tokens, 6, 10, 2, 3)),
            Does.Contain("[2, 12, 12]").And.Contain("[B, 15, 12]"));
        Assert.That(MessageOf(() => Layout.Unpatchify(tokens, 6, 7, 2, 3)), Does.Contain("6×7"));
        Assert.That(MessageOf(() => Layout.FluxUnpack(tokens, 6, 6)), Does.Contain("[2, 12, 12]").And.Contain("[B, 9, 12]"));
        Assert.That(MessageOf(() => Layout.FluxUnpack(Tensor.Zeros(context, DType.F32, 2, 12, 10), 6, 8)),
            Does.Contain("[2, 12, 10]").And.Contain("4·C"));

        var x = Tensor.Zeros(context, DType.F32, 2, 3, 6, 5);
        Assert.That(MessageOf(() => Layout.UlyssesScatterHeads(x, 4)), Does.Contain("[2, 3, 6, 5]").And.Contain("heads").And.Contain("degree 4"));
        Assert.That(MessageOf(() => Layout.UlyssesScatterSequence(x, 2)), Does.Contain("[2, 3, 6, 5]").And.Contain("tokens"));
        Assert.That(MessageOf(() => Layout.UlyssesScatterHeads(x, 3, Tensor.Zeros(context, DType.F32, 3, 2, 3, 3, 5))),
            Does.Contain("output (f32 [3, 2, 3, 3, 5])").And.Contain("[3, 2, 3, 2, 5]"));
        Assert.That(MessageOf(() => Layout.UlyssesGatherSequence(x)), Does.Contain("received (f32 [2, 3, 6, 5])"));
        Assert.That(MessageOf(() => Layout.UlyssesGatherHeads(Tensor.Zeros(context, DType.F32, 2, 1, 3, 2, 5), x)),
            Does.Contain("output (f32 [2, 3, 6, 5])").And.Contain("[1, 3, 4, 5]"));

        var sequence = Tensor.Zeros(context, DType.F32, 2, 10, 4);
        Assert.That(MessageOf(() => Layout.TokenBand(sequence, 3, 0, 1)), Does.Contain("[2, 10, 4]").And.Contain("3 wide"));
        var outside = Assert.Throws<ArgumentOutOfRangeException>(() => Layout.TokenBand(sequence, 5, 1, 2))!;
        Assert.That(outside.Message, Does.Contain("[2, 10, 4]").And.Contain("2 grid rows"));
    }
}
