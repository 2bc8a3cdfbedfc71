using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>GEMM against an fp64 loop on random inputs of awkward sizes, on both CPU kernels.</summary>
[TestFixture]
public class GemmTests
{
    static readonly object[] Shapes =
    {
        new object[] { 1, 1, 1, 1, true },
        new object[] { 1, 7, 5, 3, true },
        new object[] { 1, 37, 29, 61, true },
        new object[] { 3, 19, 33, 17, true },   // weight shared by the batch (folded into rows)
        new object[] { 4, 13, 9, 300, false },  // per-item weights, K across the 256 block edge
        new object[] { 2, 130, 70, 65, true },
    };

    [TestCaseSource(nameof(Shapes))]
    public void MatchesFp64WithBias(int batch, int m, int n, int k, bool sharedWeight)
    {
        foreach (var gemm in Contexts.CpuGemms())
        {
            if (gemm == CpuGemm.OpenBlas && !XDitLibrary.GetBuildInfo().OpenBlasLoaded) continue;
            using var context = Contexts.Cpu(gemm);
            Check(context, batch, m, n, k, sharedWeight, withBias: true, Epilogue.None, null, seed: m * 31 + n);
            Check(context, batch, m, n, k, sharedWeight, withBias: false, Epilogue.None, null, seed: m * 37 + k);
        }
    }

    [TestCase(Epilogue.GeluTanh)]
    [TestCase(Epilogue.GeluErf)]
    [TestCase(Epilogue.Silu)]
    public void EpiloguesMatchFp64(Epilogue epilogue)
    {
        Func<double, double> f = epilogue switch
        {
            Epilogue.GeluTanh => Reference.GeluTanh,
            Epilogue.GeluErf => Reference.GeluErf,
            _ => Reference.Silu,
        };
        foreach (var gemm in Contexts.CpuGemms())
        {
            if (gemm == CpuGemm.OpenBlas && !XDitLibrary.GetBuildInfo().OpenBlasLoaded) continue;
            using var context = Contexts.Cpu(gemm);
            Check(context, 2, 23, 41, 19, sharedWeight: true, withBias: true, epilogue, f, seed: 5);
        }
    }

    internal static void Check(DeviceContext context, int batch, int m, int n, int k, bool sharedWeight, bool withBias,
        Epilogue epilogue, Func<double, double>? activation, int seed, double tolerance = 1e-5)
    {
        var random = new Random(seed);
        var a = Reference.RandomFloats(random, batch * m * k);
        var w = Reference.RandomFloats(random, (sharedWeight ? 1 : batch) * n * k);
        var bias = withBias ? Reference.RandomFloats(random, n) : null;
        var expected = Reference.Gemm(a, w, bias, batch, m, n, k, sharedWeight, activation);

        using var scope = new TensorScope();
        var ta = Tensor.FromArray(context, a, batch, m, k);
        var tw = sharedWeight ? Tensor.FromArray(context, w, n, k) : Tensor.FromArray(context, w, batch, n, k);
        var tb = bias is null ? null : Tensor.FromArray(context, bias, n);
        var output = Tensor.Full(context, DType.F32, double.NaN, batch, m, n); // poisoned
        MatMul.Gemm(ta, tw, tb, output, epilogue);
        var error = Reference.RelativeL2(output.ToArray<float>(), expected);
        Assert.That(error, Is.LessThan(tolerance), $"{context.CpuGemm} batch {batch} M {m} N {n} K {k}");
    }

    [Test]
    public void TransposedViewsNeedNoCopy([Values] CpuGemm gemm)
    {
        if (gemm == CpuGemm.Auto) return;
        using var context = Contexts.CpuWith(gemm);
        var random = new Random(11);
        const int m = 21, n = 17, k = 13;
        var aT = Reference.RandomFloats(random, k * m); // stored [K, M]
        var wT = Reference.RandomFloats(random, k * n); // stored [K, N]
        var a = new float[m * k];
        var w = new float[n * k];
        for (int i = 0; i < m; i++) for (int p = 0; p < k; p++) a[i * k + p] = aT[p * m + i];
        for (int j = 0; j < n; j++) for (int p = 0; p < k; p++) w[j * k + p] = wT[p * n + j];
        var expected = Reference.Gemm(a, w, null, 1, m, n, k, true);

        using var scope = new TensorScope();
        var ta = Tensor.FromArray(context, aT, k, m).Transpose(0, 1);
        var tw = Tensor.FromArray(context, wT, k, n).Transpose(0, 1);
        Assert.That(ta.IsContiguous, Is.False);
        var output = MatMul.Gemm(ta, tw);
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(1e-5));
    }

    [Test]
    public void StridedBatchAndOutputViews()
    {
        // a is a view of every other batch item; out is a column slice of a wider matrix.
        using var context = Contexts.Cpu();
        var random = new Random(3);
        const int batch = 3, m = 5, n = 6, k = 7;
        var full = Reference.RandomFloats(random, 2 * batch * m * k);
        var w = Reference.RandomFloats(random, n * k);
        var a = new float[batch * m * k];
        for (int b = 0; b < batch; b++) Array.Copy(full, 2 * b * m * k, a, b * m * k, m * k);
        var expected = Reference.Gemm(a, w, null, batch, m, n, k, true);

        using var scope = new TensorScope();
        var ta = Tensor.FromArray(context, full, 2 * batch, m, k).Slice(0, 0, 2 * batch, step: 2);
        var tw = Tensor.FromArray(context, w, n, k);
        var wide = Tensor.Full(context, DType.F32, double.NaN, batch, m, n + 4);
        var output = wide.Narrow(2, 2, n);
        MatMul.Gemm(ta, tw, null, output);
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(1e-5));
        var untouched = wide.Narrow(2, 0, 2).ToArray<float>();
        Assert.That(untouched.All(float.IsNaN), Is.True, "GEMM wrote outside its output view");
    }

    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void HalfPrecisionStorageAccumulatesInFp32(DType dtype)
    {
        using var context = Contexts.Cpu();
        var random = new Random(17);
        const int m = 33, n = 20, k = 150;
        using var scope = new TensorScope();
        var a32 = Tensor.FromArray(context, Reference.RandomFloats(random, m * k), m, k);
        var w32 = Tensor.FromArray(context, Reference.RandomFloats(random, n * k), n, k);
        var b32 = Tensor.FromArray(context, Reference.RandomFloats(random, n), n);
        var (a, w, b) = (a32.To(dtype), w32.To(dtype), b32.To(dtype));
        // The reference takes the rounded inputs, so the only error left is the output rounding.
        var expected = Reference.Gemm(a.To(DType.F32).ToArray<float>(), w.To(DType.F32).ToArray<float>(),
            b.To(DType.F32).ToArray<float>(), 1, m, n, k, true);
        var output = MatMul.Gemm(a, w, b).To(DType.F32).ToArray<float>();
        var bound = dtype == DType.F16 ? 1e-3 : 8e-3; // half an ulp of the storage type, relative
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(bound));
    }

    [Test]
    public void EmptyInnerDimensionGivesTheBias()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Tensor.Empty(context, DType.F32, 3, 0);
        var w = Tensor.Empty(context, DType.F32, 4, 0);
        var bias = Tensor.FromArray(context, new[] { 1f, -2f, 3f, 0.5f }, 4);
        var output = MatMul.Gemm(a, w, bias, Epilogue.None).ToArray<float>();
        Assert.That(output, Is.EqualTo(new[] { 1f, -2f, 3f, 0.5f, 1f, -2f, 3f, 0.5f, 1f, -2f, 3f, 0.5f }));
    }
}
