using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>RoPE in both pairings, conv2d and nearest upsampling against fp64 loops.</summary>
[TestFixture]
public class RotaryAndConvolutionTests
{
    [TestCase(RotaryPairing.Interleaved)]
    [TestCase(RotaryPairing.Halves)]
    public void RotaryMatchesFp64(RotaryPairing pairing)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int b = 2, s = 9, h = 3, d = 16;
        var (x, xv) = Data.Random(context, 1, 2, b, s, h, d);
        var angles = new double[s * d];
        var random = new Random(5);
        // Pairs share an angle, as real tables do (each member gets its own entry in the table).
        for (int t = 0; t < s; t++) for (int i = 0; i < d / 2; i++)
        {
            var theta = random.NextDouble() * 6;
            var (p, q) = pairing == RotaryPairing.Interleaved ? (2 * i, 2 * i + 1) : (i, i + d / 2);
            angles[t * d + p] = theta;
            angles[t * d + q] = theta;
        }
        var cos = Tensor.FromArray(context, angles.Select(a => (float)Math.Cos(a)).ToArray(), s, 1, d);
        var sin = Tensor.FromArray(context, angles.Select(a => (float)Math.Sin(a)).ToArray(), s, 1, d);
        var output = Rotary.Apply(x, cos, sin, pairing).ToArray<float>();
        var expected = new double[b * s * h * d];
        for (int bi = 0; bi < b; bi++) for (int t = 0; t < s; t++) for (int hi = 0; hi < h; hi++)
        {
            var row = ((bi * s + t) * h + hi) * d;
            for (int i = 0; i < d / 2; i++)
            {
                var (p, q) = pairing == RotaryPairing.Interleaved ? (2 * i, 2 * i + 1) : (i, i + d / 2);
                double c = (float)Math.Cos(angles[t * d + p]), sn = (float)Math.Sin(angles[t * d + p]);
                expected[row + p] = xv[row + p] * c - xv[row + q] * sn;
                expected[row + q] = xv[row + q] * c + xv[row + p] * sn;
            }
        }
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(1e-6));

        // In place on the input is allowed.
        Rotary.Apply(x, cos, sin, pairing, x);
        Assert.That(Reference.RelativeL2(x.ToArray<float>(), expected), Is.LessThan(1e-6));
    }

    static double[] Conv(float[] x, float[] w, float[]? bias, int n, int cin, int h, int wd, int cout, int kh, int kw,
        int stride, int pad, out int ho, out int wo)
    {
        ho = (h + 2 * pad - kh) / stride + 1;
        wo = (wd + 2 * pad - kw) / stride + 1;
        var result = new double[n * cout * ho * wo];
        for (int i = 0; i < n; i++) for (int o = 0; o < cout; o++) for (int y = 0; y < ho; y++) for (int xo = 0; xo < wo; xo++)
        {
            double sum = bias?[o] ?? 0;
            for (int c = 0; c < cin; c++) for (int a = 0; a < kh; a++) for (int b = 0; b < kw; b++)
            {
                int iy = y * stride - pad + a, ix = xo * stride - pad + b;
                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                sum += (double)x[((i * cin + c) * h + iy) * wd + ix] * w[((o * cin + c) * kh + a) * kw + b];
            }
            result[((i * cout + o) * ho + y) * wo + xo] = sum;
        }
        return result;
    }

    [TestCase(3, 1, 1, true)]
    [TestCase(3, 2, 0, true)]   // the VAE encoder's downsampling conv (asymmetric padding is applied by the caller)
    [TestCase(1, 1, 0, false)]
    [TestCase(3, 2, 1, false)]
    public void Conv2dMatchesFp64(int k, int stride, int pad, bool withBias)
    {
        foreach (var gemm in Contexts.CpuGemms())
        {
            if (gemm == CpuGemm.OpenBlas && !XDitLibrary.GetBuildInfo().OpenBlasLoaded) continue;
            using var context = Contexts.Cpu(gemm);
            using var scope = new TensorScope();
            const int n = 2, cin = 5, h = 19, w = 23, cout = 7; // 19·23 pixels: more than one 256-pixel tile
            var (x, xv) = Data.Random(context, 1, 1, n, cin, h, w);
            var (weight, wv) = Data.Random(context, 2, 1, cout, cin, k, k);
            var (bias, bv) = Data.Random(context, 3, 1, cout);
            var output = Convolution.Conv2d(x, weight, withBias ? bias : null, stride, pad);
            var expected = Conv(xv, wv, withBias ? bv : null, n, cin, h, w, cout, k, k, stride, pad, out var ho, out var wo);
            Assert.That(output.Shape.ToArray(), Is.EqualTo(new long[] { n, cout, ho, wo }));
            Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(1e-5), gemm.ToString());
        }
    }

    [Test]
    public void Conv2dIntoAStridedOutputFromAStridedInput()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (nhwc, values) = Data.Random(context, 4, 1, 1, 6, 8, 3); // NHWC storage, read as NCHW
        var x = nhwc.Permute(0, 3, 1, 2);
        var xv = new float[3 * 6 * 8];
        for (int c = 0; c < 3; c++) for (int y = 0; y < 6; y++) for (int xx = 0; xx < 8; xx++) xv[(c * 6 + y) * 8 + xx] = values[(y * 8 + xx) * 3 + c];
        var (weight, wv) = Data.Random(context, 5, 1, 4, 3, 3, 3);
        var wide = Tensor.Full(context, DType.F32, double.NaN, 1, 6, 6, 8);
        var output = wide.Narrow(1, 1, 4);
        Convolution.Conv2d(x, weight, null, 1, 1, 1, 1, output);
        var expected = Conv(xv, wv, null, 1, 3, 6, 8, 4, 3, 3, 1, 1, out _, out _);
        Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(1e-5));
        Assert.That(wide.Narrow(1, 0, 1).ToArray<float>(), Is.All.NaN);
    }

    [Test]
    public void UpsampleNearestRepeatsEachPixel()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (x, xv) = Data.Random(context, 6, 1, 2, 3, 4, 5);
        var output = Convolution.UpsampleNearest(x.Transpose(2, 3).Transpose(2, 3), 2).ToArray<float>();
        for (int i = 0; i < 6; i++) for (int y = 0; y < 8; y++) for (int xx = 0; xx < 10; xx++)
            Assert.That(output[(i * 8 + y) * 10 + xx], Is.EqualTo(xv[(i * 4 + y / 2) * 5 + xx / 2]));
    }

    [Test]
    public void InvalidConvolutionsAreNamed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(context, DType.F32, 1, 3, 4, 4);
        Assert.That(Assert.Throws<XDitException>(() => Convolution.Conv2d(x, Tensor.Zeros(context, DType.F32, 2, 4, 3, 3), null))!.Message,
            Does.Contain("weight (f32 [2, 4, 3, 3])").And.Contain("[Cout, 3, kh, kw]"));
        Assert.That(Assert.Throws<XDitException>(() => Convolution.Conv2d(x, Tensor.Zeros(context, DType.F32, 2, 3, 5, 5), null))!.Message,
            Does.Contain("smaller than the 5x5 kernel"));
        Assert.That(Assert.Throws<XDitException>(() => Convolution.Conv2d(x, Tensor.Zeros(context, DType.F32, 2, 3, 3, 3), null, stride: 0))!.Message,
            Does.Contain("strides must be >= 1"));
        Assert.That(Assert.Throws<XDitException>(() => Rotary.Apply(Tensor.Zeros(context, DType.F32, 1, 2, 1, 3),
            Tensor.Zeros(context, DType.F32, 2, 1, 3), Tensor.Zeros(context, DType.F32, 2, 1, 3), RotaryPairing.Halves))!.Message,
            Does.Contain("even"));
    }
}
