using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Layer norm (with adaLN modulation), RMS norm and group norm against fp64. Tolerance:
/// relative L2 < 1e-6 in f32 (statistics are fp64 in the kernel, so only the output rounding remains).</summary>
[TestFixture]
public class NormalizationTests
{
    [Test]
    public void LayerNormWithAffineAndModulation()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int b = 2, s = 7, c = 1152;
        var (x, xv) = Data.Random(context, 1, 3, b, s, c);
        var (w, wv) = Data.Random(context, 2, 1, c);
        var (bias, bv) = Data.Random(context, 3, 1, c);
        var (scale, sv) = Data.Random(context, 4, 1, b, 1, c);  // per sample, broadcast over tokens
        var (shift, hv) = Data.Random(context, 5, 1, b, 1, c);
        foreach (var (useAffine, useModulation) in new[] { (false, false), (true, false), (false, true), (true, true) })
        {
            var output = Normalization.LayerNorm(x, useAffine ? w : null, useAffine ? bias : null, 1e-6,
                useModulation ? scale : null, useModulation ? shift : null).ToArray<float>();
            var expected = new double[b * s * c];
            for (int i = 0; i < b; i++)
            for (int t = 0; t < s; t++)
            {
                var row = (i * s + t) * c;
                double mean = 0, variance = 0;
                for (int k = 0; k < c; k++) mean += xv[row + k];
                mean /= c;
                for (int k = 0; k < c; k++) variance += (xv[row + k] - mean) * (xv[row + k] - mean);
                variance /= c;
                for (int k = 0; k < c; k++)
                {
                    var y = (xv[row + k] - mean) / Math.Sqrt(variance + 1e-6);
                    if (useAffine) y = y * wv[k] + bv[k];
                    if (useModulation) y = y * (1 + sv[i * c + k]) + hv[i * c + k];
                    expected[row + k] = y;
                }
            }
            Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(1e-6), $"affine {useAffine}, modulation {useModulation}");
        }
    }

    [Test]
    public void RmsNormOnAStridedView()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (x, xv) = Data.Random(context, 1, 5, 6, 64, 2); // [6, 64, 2]: normalise the 64 of each pair column
        var (w, wv) = Data.Random(context, 2, 1, 64);
        var view = x.Transpose(1, 2); // [6, 2, 64], last dim stride 2
        var output = Normalization.RmsNorm(view, w, 1e-6).ToArray<float>();
        var expected = new double[6 * 2 * 64];
        for (int i = 0; i < 6; i++)
        for (int j = 0; j < 2; j++)
        {
            double squares = 0;
            for (int k = 0; k < 64; k++) squares += (double)xv[(i * 64 + k) * 2 + j] * xv[(i * 64 + k) * 2 + j];
            var inv = 1 / Math.Sqrt(squares / 64 + 1e-6);
            for (int k = 0; k < 64; k++) expected[(i * 2 + j) * 64 + k] = xv[(i * 64 + k) * 2 + j] * inv * wv[k];
        }
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(1e-6));
    }

    [TestCase(DType.F32, 1e-6)]
    [TestCase(DType.BF16, 8e-3)]
    public void GroupNormNchw(DType dtype, double tolerance)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int n = 2, c = 12, h = 5, w = 7, groups = 4;
        var (x, xv) = Data.Random(context, dtype, 1, 2, n, c, h, w);
        var (weight, wv) = Data.Random(context, dtype, 2, 1, c);
        var (bias, bv) = Data.Random(context, dtype, 3, 1, c);
        var output = Data.Floats(Normalization.GroupNorm(x, groups, weight, bias, 1e-6));
        var expected = new double[n * c * h * w];
        var per = c / groups;
        for (int i = 0; i < n; i++)
        for (int g = 0; g < groups; g++)
        {
            double mean = 0, variance = 0, count = per * h * w;
            for (int ch = g * per; ch < (g + 1) * per; ch++) for (int p = 0; p < h * w; p++) mean += xv[(i * c + ch) * h * w + p];
            mean /= count;
            for (int ch = g * per; ch < (g + 1) * per; ch++) for (int p = 0; p < h * w; p++)
                variance += Math.Pow(xv[(i * c + ch) * h * w + p] - mean, 2);
            variance /= count;
            for (int ch = g * per; ch < (g + 1) * per; ch++) for (int p = 0; p < h * w; p++)
                expected[(i * c + ch) * h * w + p] = (xv[(i * c + ch) * h * w + p] - mean) / Math.Sqrt(variance + 1e-6) * wv[ch] + bv[ch];
        }
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(tolerance));
    }

    [Test]
    public void InvalidArgumentsAreNamed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(context, DType.F32, 2, 6, 3, 3);
        Assert.That(Assert.Throws<XDitException>(() => Normalization.GroupNorm(x, 4, null, null, 1e-6))!.Message,
            Does.Contain("4 groups do not divide 6 channels"));
        Assert.That(Assert.Throws<XDitException>(() => Normalization.LayerNorm(x, Tensor.Zeros(context, DType.F32, 6), null, 1e-6))!.Message,
            Does.Contain("weight (f32 [6])").And.Contain("expected [3]"));
        Assert.That(Assert.Throws<XDitException>(() => Normalization.RmsNorm(x, null, -1))!.Message, Does.Contain("eps"));
        Assert.That(Assert.Throws<XDitException>(() => Normalization.LayerNorm(x, null, null, 1e-6, Tensor.Zeros(context, DType.F32, 5)))!.Message,
            Does.Contain("scale [5]"));
    }
}
