using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Attention against an fp64 softmax(QKᵀ)V written here, with each instruction set's kernels
/// this machine runs; the LSE merge against attention over the union of the keys. Tolerance: relative
/// L2 < 2e-6 in f32 (fp32 accumulation over Sk terms and the kernel's polynomial exp, ~2 ulp).</summary>
[TestFixture]
public class AttentionTests
{
    [TestCase(1, 37, 53, 2, 8, 8)]
    [TestCase(2, 70, 300, 3, 64, 64)]     // Sk across the 256-key block edge, Sq across the 64-query one
    [TestCase(1, 129, 65, 1, 72, 72)]
    [TestCase(1, 16, 600, 2, 128, 128)]
    [TestCase(2, 9, 11, 4, 16, 24)]       // Dv ≠ D
    [TestCase(1, 80, 80, 1, 512, 512)]    // the VAE mid-block: one head as wide as the channels
    public void MatchesFp64(int b, int sq, int sk, int h, int d, int dv)
    {
        foreach (var isa in Contexts.CpuIsas())
        {
            using var context = Contexts.Cpu(isa);
            using var scope = new TensorScope();
            var (q, qv) = Data.Random(context, 1, 1.5, b, sq, h, d);
            var (k, kv) = Data.Random(context, 2, 1.5, b, sk, h, d);
            var (v, vv) = Data.Random(context, 3, 1.0, b, sk, h, dv);
            var output = Tensor.Full(context, DType.F32, double.NaN, b, sq, h, dv);
            var lse = Tensor.Full(context, DType.F32, double.NaN, b, h, sq);
            var scale = 1 / Math.Sqrt(d);
            Attention.ScaledDotProduct(q, k, v, null, null, null, output, lse);
            var (expected, expectedLse) = Reference.Attention(qv, kv, vv, null, null, b, sq, sk, h, d, dv, scale);
            Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(2e-6), $"{isa} out");
            Assert.That(Reference.RelativeL2(lse.ToArray<float>(), expectedLse), Is.LessThan(1e-6), $"{isa} lse");
        }
    }

    [TestCaseSource(typeof(Contexts), nameof(Contexts.CpuIsas))]
    public void MaskBiasAndCustomScale(CpuIsa isa)
    {
        using var context = Contexts.Cpu(isa);
        using var scope = new TensorScope();
        const int b = 2, sq = 13, sk = 270, h = 3, d = 16;
        var (q, qv) = Data.Random(context, 4, 1, b, sq, h, d);
        var (k, kv) = Data.Random(context, 5, 1, b, sk, h, d);
        var (v, vv) = Data.Random(context, 6, 1, b, sk, h, d);
        var (bias, biasValues) = Data.Random(context, 7, 2, b, h, sq, sk);
        var mask = new bool[b * sk];
        var random = new Random(8);
        for (int i = 0; i < mask.Length; i++) mask[i] = random.NextDouble() < 0.7;
        var tmask = Tensor.FromArray(context, mask, b, sk);
        var output = Attention.ScaledDotProduct(q, k, v, tmask, bias, scale: 0.3);
        var (expected, _) = Reference.Attention(qv, kv, vv, mask, biasValues, b, sq, sk, h, d, d, 0.3);
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(2e-6));

        // A bias broadcast over batch and queries ([1, H, 1, Sk]) is the same as its expanded copy.
        var (small, smallValues) = Data.Random(context, 9, 2, 1, h, 1, sk);
        var full = new float[b * h * sq * sk];
        for (int bi = 0; bi < b; bi++) for (int hi = 0; hi < h; hi++) for (int i = 0; i < sq; i++) for (int j = 0; j < sk; j++)
            full[((bi * h + hi) * sq + i) * sk + j] = smallValues[hi * sk + j];
        var broadcast = Attention.ScaledDotProduct(q, k, v, null, small, scale: 0.3);
        var (expected2, _) = Reference.Attention(qv, kv, vv, null, full, b, sq, sk, h, d, d, 0.3);
        Assert.That(Reference.RelativeL2(broadcast.ToArray<float>(), expected2), Is.LessThan(2e-6));
    }

    [TestCaseSource(typeof(Contexts), nameof(Contexts.CpuIsas))]
    public void FullyMaskedQueriesGiveZerosAndMinusInfinity(CpuIsa isa)
    {
        using var context = Contexts.Cpu(isa);
        using var scope = new TensorScope();
        var (q, _) = Data.Random(context, 1, 1, 2, 5, 1, 8);
        var (k, _) = Data.Random(context, 2, 1, 2, 7, 1, 8);
        var (v, _) = Data.Random(context, 3, 1, 2, 7, 1, 8);
        var mask = Tensor.FromArray(context, new bool[14], 2, 7);
        var lse = Tensor.Empty(context, DType.F32, 2, 1, 5);
        var output = Attention.ScaledDotProduct(q, k, v, mask, lse: lse);
        Assert.That(output.ToArray<float>(), Is.All.EqualTo(0f));
        Assert.That(lse.ToArray<float>(), Is.All.EqualTo(float.NegativeInfinity));
    }

    /// <summary>Masked keys are never read: NaN in their keys and values (uninitialised padding of a
    /// sequence-parallel shard) leaves the output exactly as zeros there would.</summary>
    [TestCaseSource(typeof(Contexts), nameof(Contexts.CpuIsas))]
    public void MaskedKeysAreNeverRead(CpuIsa isa)
    {
        using var context = Contexts.Cpu(isa);
        CheckMaskedKeysAreNeverRead(context, DType.F32);
    }

    [Test]
    [Category("GPU")]
    public void MaskedKeysAreNeverReadOnCuda([Values(DType.F32, DType.BF16)] DType dtype)
    {
        using var cuda = Contexts.CudaOrIgnore();
        CheckMaskedKeysAreNeverRead(cuda, dtype); // bf16, head dim 64: the tensor-core kernel
    }

    static void CheckMaskedKeysAreNeverRead(DeviceContext context, DType dtype)
    {
        using var scope = new TensorScope();
        const int b = 2, sq = 70, sk = 90, h = 2, d = 64, padding = 20;
        var q = Data.Random(context, dtype, 31, 1, b, sq, h, d).Tensor;
        var mask = new bool[b * sk];
        for (int j = 0; j < b * sk; j++) mask[j] = j % sk < sk - padding && j % sk % 7 != 3;
        var keyMask = Tensor.FromArray(context, mask, b, sk);
        Tensor Attend(double paddingValue)
        {
            var k = Data.Random(context, dtype, 32, 1, b, sk, h, d).Tensor;
            var v = Data.Random(context, dtype, 33, 1, b, sk, h, d).Tensor;
            foreach (var t in new[] { k, v })
            {
                Elementwise.Fill(t.Narrow(1, sk - padding, padding), paddingValue);
                Elementwise.Fill(t.Narrow(1, 3, 1), paddingValue); // a masked key inside the sequence
            }
            return Attention.ScaledDotProduct(q, k, v, keyMask);
        }
        var withNaN = Attend(double.NaN).To(DType.F32).ToArray<float>();
        var withZeros = Attend(0).To(DType.F32).ToArray<float>();
        Assert.That(withNaN.Count(float.IsNaN), Is.Zero, "NaN outputs");
        Assert.That(withNaN.AsSpan().SequenceEqual(withZeros), Is.True, "the same output as with zeros in the masked rows");
    }

    [TestCaseSource(typeof(Contexts), nameof(Contexts.CpuIsas))]
    public void KeysMaskedForAWholeBlockThenOpen(CpuIsa isa)
    {
        // Batch 0 masks the first 256-key block entirely (the online softmax starts from −inf and meets
        // its first finite score in the second block); batch 1 masks only the last keys.
        using var context = Contexts.Cpu(isa);
        using var scope = new TensorScope();
        const int b = 2, sq = 20, sk = 300, h = 2, d = 16;
        var (q, qv) = Data.Random(context, 21, 1, b, sq, h, d);
        var (k, kv) = Data.Random(context, 22, 1, b, sk, h, d);
        var (v, vv) = Data.Random(context, 23, 1, b, sk, h, d);
        var mask = new bool[b * sk];
        for (int j = 0; j < sk; j++) mask[j] = j >= 256;
        for (int j = 0; j < sk; j++) mask[sk + j] = j < 290;
        var lse = Tensor.Empty(context, DType.F32, b, h, sq);
        var output = Attention.ScaledDotProduct(q, k, v, Tensor.FromArray(context, mask, b, sk), lse: lse);
        var (expected, expectedLse) = Reference.Attention(qv, kv, vv, mask, null, b, sq, sk, h, d, d, 1 / Math.Sqrt(d));
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(2e-6));
        Assert.That(Reference.RelativeL2(lse.ToArray<float>(), expectedLse), Is.LessThan(1e-6));
    }

    [Test]
    public void TheInstructionSetIsResolvedAndChecked()
    {
        using var auto = Contexts.Cpu(CpuIsa.Auto);
        Assert.That(auto.CpuIsa, Is.EqualTo(Contexts.HasAvx2 ? CpuIsa.Avx2 : CpuIsa.Baseline));
        using var baseline = Contexts.Cpu(CpuIsa.Baseline);
        Assert.That(baseline.CpuIsa, Is.EqualTo(CpuIsa.Baseline));
        if (!Contexts.HasAvx2)
            Assert.That(Contexts.StatusOf(() => Contexts.Cpu(CpuIsa.Avx2)), Is.EqualTo(XditStatus.Unavailable));
        Assert.That(Contexts.StatusOf(() => DeviceContext.Create(Device.Cpu, new ContextOptions { CpuIsa = (CpuIsa)7 })),
            Is.EqualTo(XditStatus.InvalidArgument));
    }

    [Test]
    public void StridedViewsOfAPackedProjection()
    {
        // q, k, v as views into one [B, S, 3, H, D] projection output, and out into a wider buffer.
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int b = 2, s = 45, h = 2, d = 24;
        var (qkv, values) = Data.Random(context, 11, 1, b, s, 3, h, d);
        Tensor Part(int i) => qkv.Narrow(2, i, 1).Squeeze(2);
        var wide = Tensor.Full(context, DType.F32, double.NaN, b, s, h, d + 8);
        var output = wide.Narrow(3, 4, d);
        Attention.ScaledDotProduct(Part(0), Part(1), Part(2), null, null, null, output, null);
        float[] Extract(int part)
        {
            var r = new float[b * s * h * d];
            for (int bi = 0; bi < b; bi++) for (int si = 0; si < s; si++) for (int hi = 0; hi < h; hi++) for (int c = 0; c < d; c++)
                r[((bi * s + si) * h + hi) * d + c] = values[(((bi * s + si) * 3 + part) * h + hi) * d + c];
            return r;
        }
        var (expected, _) = Reference.Attention(Extract(0), Extract(1), Extract(2), null, null, b, s, s, h, d, d, 1 / Math.Sqrt(d));
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(2e-6));
        Assert.That(wide.Narrow(3, 0, 4).ToArray<float>(), Is.All.NaN);
    }

    [Test]
    public void HalfPrecisionStorage([Values(DType.F16, DType.BF16)] DType dtype,
        [ValueSource(typeof(Contexts), nameof(Contexts.CpuIsas))] CpuIsa isa)
    {
        using var context = Contexts.Cpu(isa);
        using var scope = new TensorScope();
        const int b = 1, sq = 33, sk = 90, h = 2, d = 64;
        var (q, qv) = Data.Random(context, dtype, 1, 1, b, sq, h, d);
        var (k, kv) = Data.Random(context, dtype, 2, 1, b, sk, h, d);
        var (v, vv) = Data.Random(context, dtype, 3, 1, b, sk, h, d);
        var output = Data.Floats(Attention.ScaledDotProduct(q, k, v));
        var (expected, _) = Reference.Attention(qv, kv, vv, null, null, b, sq, sk, h, d, d, 1 / Math.Sqrt(d));
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(dtype == DType.F16 ? 1e-3 : 8e-3));
    }

    [Test]
    public void MergingSplitKeysEqualsAttentionOverAllKeys()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int b = 2, sq = 21, sk = 77, h = 3, d = 32;
        var (q, _) = Data.Random(context, 1, 1, b, sq, h, d);
        var (k, _) = Data.Random(context, 2, 1, b, sk, h, d);
        var (v, _) = Data.Random(context, 3, 1, b, sk, h, d);
        var fullLse = Tensor.Empty(context, DType.F32, b, h, sq);
        var full = Attention.ScaledDotProduct(q, k, v, lse: fullLse);
        // Three ring steps: keys [0, 30), [30, 50), [50, 77), merged in place into the first.
        var bounds = new[] { 0, 30, 50, 77 };
        var acc = Tensor.Empty(context, DType.F32, b, sq, h, d);
        var accLse = Tensor.Empty(context, DType.F32, b, h, sq);
        Attention.ScaledDotProduct(q, k.Narrow(1, 0, 30), v.Narrow(1, 0, 30), null, null, null, acc, accLse);
        for (int part = 1; part < 3; part++)
        {
            var length = bounds[part + 1] - bounds[part];
            var partLse = Tensor.Empty(context, DType.F32, b, h, sq);
            var partOut = Attention.ScaledDotProduct(q, k.Narrow(1, bounds[part], length), v.Narrow(1, bounds[part], length), lse: partLse);
            Attention.Merge(acc, accLse, partOut, partLse, acc, accLse);
        }
        Assert.That(Reference.RelativeL2(acc.ToArray<float>(), full.ToArray<float>()), Is.LessThan(1e-6));
        Assert.That(Reference.RelativeL2(accLse.ToArray<float>(), fullLse.ToArray<float>()), Is.LessThan(1e-6));
    }

    [Test]
    public void MergeWithAnEmptyPartKeepsTheOther()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (a, av) = Data.Random(context, 1, 1, 1, 4, 2, 8);
        var (lseA, _) = Data.Random(context, 2, 1, 1, 2, 4);
        var b = Tensor.Zeros(context, DType.F32, 1, 4, 2, 8);
        var lseB = Tensor.Full(context, DType.F32, double.NegativeInfinity, 1, 2, 4);
        var output = Tensor.Empty(context, DType.F32, 1, 4, 2, 8);
        var lse = Tensor.Empty(context, DType.F32, 1, 2, 4);
        Attention.Merge(a, lseA, b, lseB, output, lse);
        Assert.That(output.ToArray<float>(), Is.EqualTo(av));
        Assert.That(lse.ToArray<float>(), Is.EqualTo(lseA.ToArray<float>()));
    }

    [Test]
    public void LongSequenceMemoryStaysLinear()
    {
        // 16k × 16k, one head, D = 64: Sq·Sk scores would be 1 GiB; the blocked kernel needs a few
        // hundred KiB per thread beyond inputs and outputs.
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int s = 16384, d = 64;
        var (q, qv) = Data.Random(context, 1, 1, 1, s, 1, d);
        var (k, kv) = Data.Random(context, 2, 1, 1, s, 1, d);
        var (v, vv) = Data.Random(context, 3, 1, 1, s, 1, d);
        var output = Tensor.Empty(context, DType.F32, 1, s, 1, d);
        context.ResetPeak();
        var before = context.AllocatorStats.BytesInUse;
        Attention.ScaledDotProduct(q, k, v, null, null, null, output, null);
        var extra = context.AllocatorStats.PeakBytesInUse - before;
        Assert.That(extra, Is.LessThan(64UL << 20), $"extra bytes {extra}");
        Assert.That(extra, Is.GreaterThan(0UL), "the kernel's workspace comes from the context's allocator");
        // Spot-check a few query rows against fp64.
        var values = output.ToArray<float>();
        foreach (var row in new[] { 0, 8191, 16383 })
        {
            var (expected, _) = Reference.Attention(qv.AsSpan(row * d, d).ToArray(), kv, vv, null, null, 1, 1, s, 1, d, d, 1 / Math.Sqrt(d));
            Assert.That(Reference.RelativeL2(values.AsSpan(row * d, d), expected), Is.LessThan(2e-6), $"row {row}");
        }
    }

    [Test]
    public void InvalidOperandsAreNamed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var q = Tensor.Zeros(context, DType.F32, 1, 4, 2, 8);
        var k = Tensor.Zeros(context, DType.F32, 1, 5, 2, 8);
        Assert.That(Assert.Throws<XDitException>(() => Attention.ScaledDotProduct(q, k, Tensor.Zeros(context, DType.F32, 1, 6, 2, 8)))!.Message,
            Does.Contain("v (f32 [1, 6, 2, 8])").And.Contain("k (f32 [1, 5, 2, 8])"));
        Assert.That(Assert.Throws<XDitException>(() => Attention.ScaledDotProduct(q, Tensor.Zeros(context, DType.F32, 1, 5, 3, 8), k))!.Message,
            Does.Contain("[1, Sk, 2, 8]"));
        Assert.That(Assert.Throws<XDitException>(() => Attention.ScaledDotProduct(q, k, k, Tensor.Zeros(context, DType.F32, 1, 5)))!.Message,
            Does.Contain("key_mask").And.Contain("bool"));
        Assert.That(Assert.Throws<XDitException>(() => Attention.ScaledDotProduct(q, k, k, lse: Tensor.Zeros(context, DType.F32, 1, 4, 2)))!.Message,
            Does.Contain("lse (f32 [1, 4, 2])").And.Contain("[1, 2, 4]"));
        Assert.That(Assert.Throws<XDitException>(() => Attention.ScaledDotProduct(q.Transpose(1, 3), k, k))!.Message,
            Does.Contain("unit stride").Or.Contain("Sk"));
    }
}
