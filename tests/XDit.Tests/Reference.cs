namespace XDit.Tests;

/// <summary>Independent fp64 references and error measures for the tests.</summary>
internal static class Reference
{
    /// <summary>‖actual − expected‖₂ / ‖expected‖₂ accumulated in double; infinity when any actual
    /// element is not finite (a poisoned output left unwritten shows up here).</summary>
    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "element count");
        double diff = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            var d = actual[i] - expected[i];
            diff += d * d;
            norm += expected[i] * expected[i];
        }
        return norm == 0 ? Math.Sqrt(diff) : Math.Sqrt(diff / norm);
    }

    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        var e = new double[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = expected[i];
        return RelativeL2(actual, e);
    }

    /// <summary>softmax(q·kᵀ·scale + bias, masked)·v in fp64: out [B, Sq, H, Dv] and lse [B, H, Sq], for
    /// row-major q [B, Sq, H, D], k [B, Sk, H, D], v [B, Sk, H, Dv], mask [B, Sk], bias [B, H, Sq, Sk].</summary>
    public static (double[] Out, double[] Lse) Attention(float[] q, float[] k, float[] v, bool[]? mask, float[]? bias,
        int b, int sq, int sk, int h, int d, int dv, double scale)
    {
        var output = new double[b * sq * h * dv];
        var lse = new double[b * h * sq];
        var scores = new double[sk];
        for (int bi = 0; bi < b; bi++)
        for (int hi = 0; hi < h; hi++)
        for (int i = 0; i < sq; i++)
        {
            double max = double.NegativeInfinity;
            for (int j = 0; j < sk; j++)
            {
                if (mask is not null && !mask[bi * sk + j]) { scores[j] = double.NegativeInfinity; continue; }
                double s = 0;
                for (int c = 0; c < d; c++) s += (double)q[((bi * sq + i) * h + hi) * d + c] * k[((bi * sk + j) * h + hi) * d + c];
                s *= scale;
                if (bias is not null) s += bias[((bi * h + hi) * sq + i) * sk + j];
                scores[j] = s;
                max = Math.Max(max, s);
            }
            double sum = 0;
            for (int j = 0; j < sk; j++) sum += double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max);
            lse[(bi * h + hi) * sq + i] = sum > 0 ? max + Math.Log(sum) : double.NegativeInfinity;
            for (int c = 0; c < dv; c++)
            {
                double acc = 0;
                for (int j = 0; j < sk; j++)
                    if (!double.IsNegativeInfinity(scores[j]))
                        acc += Math.Exp(scores[j] - max) / sum * v[((bi * sk + j) * h + hi) * dv + c];
                output[((bi * sq + i) * h + hi) * dv + c] = sum > 0 ? acc : 0;
            }
        }
        return (output, lse);
    }

    public static float[] RandomFloats(Random random, int count, double scale = 1.0)
    {
        var values = new float[count];
        for (int i = 0; i < count; i++) values[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        return values;
    }

    /// <summary>out[b, m, n] = act(Σₖ a[b, m, k]·w[b?, n, k] + bias[n]) in double, on row-major arrays.</summary>
    public static double[] Gemm(float[] a, float[] w, float[]? bias, int batch, int m, int n, int k, bool sharedWeight,
        Func<double, double>? activation = null)
    {
        var result = new double[batch * m * n];
        for (int b = 0; b < batch; b++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double sum = bias?[j] ?? 0;
            var wBase = (sharedWeight ? 0 : b * n * k) + j * k;
            var aBase = (b * m + i) * k;
            for (int p = 0; p < k; p++) sum += (double)a[aBase + p] * w[wBase + p];
            result[(b * m + i) * n + j] = activation?.Invoke(sum) ?? sum;
        }
        return result;
    }

    public static double GeluTanh(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    public static double GeluErf(double x) => 0.5 * x * (1 + Erf(x / Math.Sqrt(2)));

    public static double Silu(double x) => x / (1 + Math.Exp(-x));

    /// <summary>erf by its Maclaurin series (|x| ≤ 3) or continued fraction (beyond): accurate to ~1e-15,
    /// far below the float32 tolerances it is used against.</summary>
    public static double Erf(double x)
    {
        var ax = Math.Abs(x);
        double result;
        if (ax <= 3)
        {
            double term = ax, sum = ax;
            for (int n = 1; n < 200; n++)
            {
                term *= -ax * ax / n;
                var add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17 * Math.Abs(sum)) break;
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
            double f = ax;
            for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
            result = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -result : result;
    }
}
