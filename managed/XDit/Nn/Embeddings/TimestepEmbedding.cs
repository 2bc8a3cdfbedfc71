using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Embeddings;

/// <summary>
/// The sinusoidal timestep projection of diffusers' <c>get_timestep_embedding</c> (the <c>Timesteps</c>
/// module, <c>time_proj</c> in every DiT): row n is <c>[sin(t_n·f_k) | cos(t_n·f_k)]</c> over the
/// frequencies <c>f_k = exp(−ln(max_period)·k / (half − shift))</c>, k &lt; half = dim / 2.
/// </summary>
/// <remarks>
/// The frequencies are computed on the host, the angles and their sines on the device from a tensor of
/// timesteps (so that a captured step, <see cref="DeviceGraph"/>, reads each step's timesteps from device
/// memory); both halves round as the host reference <see cref="Sinusoidal(ReadOnlySpan{float}, int, bool, double, double, int)"/>
/// does, so the two agree bit for bit (sin and cos are evaluated in double on the device too). diffusers computes every stage
/// in float32 (the exponent from a float32 <c>arange</c>, then exp, the product with the timestep, the
/// sin and cos), and timesteps in the thousands (sigma·1000, guidance·1000) make the angles large
/// enough that one float32 ulp of a frequency moves the sine by 1e-5. So each stage is rounded to
/// float32 where diffusers' is, and exp reproduces the arithmetic of PyTorch's CPU kernel, which is not
/// correctly rounded (see <see cref="ExpLikeTorchCpu"/>); sin and cos are evaluated in double and
/// rounded once (PyTorch's are within an ulp of that). The result equals diffusers' float32 CPU
/// output to about 2e-8 (relative L2).
/// </remarks>
public static class TimestepEmbedding
{
    /// <summary>The embedding, row-major [timesteps.Length, dim]; an odd <paramref name="dim"/> gets a
    /// zero last column.</summary>
    /// <param name="timesteps">One value per row, as float32: diffusers calls <c>timesteps.float()</c>, so
    /// integer timesteps arrive converted, and a model that multiplies sigma or guidance by 1000 first
    /// (Flux) does so in float32 before the call.</param>
    /// <param name="dim">Output width (diffusers' <c>embedding_dim</c>, 256 in most DiTs).</param>
    /// <param name="flipSinToCos">True puts the cosines first (every DiT in diffusers sets it).</param>
    /// <param name="downscaleFreqShift">diffusers' <c>downscale_freq_shift</c> (0 for the DiTs, 1 for UNets).</param>
    /// <param name="scale">Multiplies the angles (diffusers' <c>scale</c>).</param>
    /// <param name="maxPeriod">Period of the lowest frequency.</param>
    public static float[] Sinusoidal(ReadOnlySpan<float> timesteps, int dim, bool flipSinToCos, double downscaleFreqShift,
        double scale = 1, int maxPeriod = 10000)
    {
        var frequencies = Frequencies(dim, downscaleFreqShift, maxPeriod);
        var half = frequencies.Length;
        var firstBlock = flipSinToCos ? half : 0; // where the sines go
        var secondBlock = flipSinToCos ? 0 : half;
        var scale32 = (float)scale;
        var result = new float[timesteps.Length * dim];
        for (int n = 0; n < timesteps.Length; n++)
        {
            var row = result.AsSpan(n * dim, dim);
            for (int k = 0; k < half; k++)
            {
                var angle = scale32 * (timesteps[n] * frequencies[k]);
                row[firstBlock + k] = (float)Math.Sin(angle);
                row[secondBlock + k] = (float)Math.Cos(angle);
            }
        }
        return result;
    }

    /// <summary><see cref="Sinusoidal(ReadOnlySpan{float}, int, bool, double, double, int)"/> as an f32
    /// tensor [timesteps.Length, dim] on <paramref name="context"/>.</summary>
    public static Tensor Sinusoidal(DeviceContext context, ReadOnlySpan<float> timesteps, int dim, bool flipSinToCos,
        double downscaleFreqShift, double scale = 1, int maxPeriod = 10000)
    {
        using var values = Tensor.FromSpan(context, timesteps, timesteps.Length);
        return Sinusoidal(values, dim, flipSinToCos, downscaleFreqShift, scale, maxPeriod);
    }

    /// <summary>The embedding of the f32 timesteps [N] of a tensor, computed on its device: f32 [N, dim],
    /// equal to <see cref="Sinusoidal(ReadOnlySpan{float}, int, bool, double, double, int)"/> of the same values.</summary>
    public static Tensor Sinusoidal(Tensor timesteps, int dim, bool flipSinToCos, double downscaleFreqShift,
        double scale = 1, int maxPeriod = 10000)
    {
        ArgumentNullException.ThrowIfNull(timesteps);
        if (timesteps.Rank != 1 || timesteps.DType != DType.F32)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"timesteps ({timesteps.DType.Name()} {timesteps.ShapeString}) must be f32 [N], one value per row");
        var frequencies = Frequencies(dim, downscaleFreqShift, maxPeriod);
        int half = frequencies.Length, n = (int)timesteps.Size(0);
        var result = Tensor.Empty(timesteps.Context, DType.F32, n, dim);
        using var scope = new TensorScope();
        if (dim % 2 == 1) Elementwise.Fill(result.Narrow(1, dim - 1, 1), 0);
        if (half == 0) return result;
        var f = Tensor.FromArray(timesteps.Context, frequencies, 1, half);
        var angles = Elementwise.Mul(timesteps.View(n, 1).Expand(n, half), f.Expand(n, half));
        if (scale != 1) angles = Elementwise.Affine(angles, (float)scale);
        Elementwise.Unary(UnaryOp.Sin, angles, result.Narrow(1, flipSinToCos ? half : 0, half));
        Elementwise.Unary(UnaryOp.Cos, angles, result.Narrow(1, flipSinToCos ? 0 : half, half));
        return result;
    }

    /// <summary>f_k in float32, rounded stage by stage as diffusers' float32 tensor arithmetic does.</summary>
    static float[] Frequencies(int dim, double downscaleFreqShift, int maxPeriod)
    {
        if (dim < 1) throw new ArgumentOutOfRangeException(nameof(dim), dim, "the embedding width must be positive");
        if (maxPeriod < 1) throw new ArgumentOutOfRangeException(nameof(maxPeriod), maxPeriod, "the period must be positive");
        var half = dim / 2;
        var denominator = (float)(half - downscaleFreqShift);
        if (half > 0 && !(denominator > 0))
            throw new ArgumentException(
                $"dim {dim} (half {half}) minus downscaleFreqShift {downscaleFreqShift} must be positive", nameof(downscaleFreqShift));
        var negativeLogPeriod = (float)-Math.Log(maxPeriod);
        var frequencies = new float[half];
        for (int k = 0; k < half; k++)
        {
            var exponent = negativeLogPeriod * k / denominator; // float32 multiply, then float32 divide
            frequencies[k] = ExpLikeTorchCpu(exponent);
        }
        return frequencies;
    }

    /// <summary>
    /// exp in float32 computed as PyTorch's vectorized CPU exp (SLEEF's <c>expf_u10</c>, AVX2 with FMA)
    /// computes it: x = q·ln2 + r with q the nearest integer to x·log2(e) and ln2 split into a high and a
    /// low part, e^r by a degree-7 polynomial in Horner form with fused multiply-adds, then scaled by 2^q.
    /// It is within one ulp of e^x but lands on the other neighbour about one time in ten; with
    /// timesteps near 1000 that ulp shows (3e-6 relative in the embedding, 3e-5 for guidance 6000), so
    /// the frequencies use the same arithmetic. (PyTorch evaluates the last half % 16 frequencies, the
    /// remainder after its AVX2 vectors, with libm's exp; no diffusers model has such a width.) Inputs
    /// here are the exponents −ln(maxPeriod)·k/(half − shift), far from overflow and underflow.
    /// </summary>
    static float ExpLikeTorchCpu(float x)
    {
        const float Log2E = 1.44269504088896340736f;
        const float Ln2High = 0.693145751953125f; // few mantissa bits, so q·Ln2High is exact
        const float Ln2Low = 1.428606765330187045e-06f;
        var q = (int)MathF.Round(x * Log2E, MidpointRounding.ToEven);
        var r = MathF.FusedMultiplyAdd(q, -Ln2High, x);
        r = MathF.FusedMultiplyAdd(q, -Ln2Low, r);

        var p = 0.000198527617612853646278381f;
        p = MathF.FusedMultiplyAdd(p, r, 0.00139304355252534151077271f);
        p = MathF.FusedMultiplyAdd(p, r, 0.00833336077630519866943359f);
        p = MathF.FusedMultiplyAdd(p, r, 0.0416664853692054748535156f);
        p = MathF.FusedMultiplyAdd(p, r, 0.166666671633720397949219f);
        p = MathF.FusedMultiplyAdd(p, r, 0.5f);
        var expR = 1f + MathF.FusedMultiplyAdd(r * r, p, r); // 1 + r + r²·p(r)

        var halfQ = q >> 1; // two factors, so that neither power of two leaves the float range
        return expR * MathF.ScaleB(1f, halfQ) * MathF.ScaleB(1f, q - halfQ);
    }
}
