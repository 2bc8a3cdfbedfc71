using System.Numerics;

namespace XDit.Schedulers;

/// <summary>
/// The training noise schedule ᾱ_t = Π(1 − β) of the DDPM-family schedulers, built the way diffusers
/// builds it with torch tensors, so that the values (and the integer timesteps and sigmas derived from
/// them) are those of diffusers: float32 for most schedulers, float64 where CogVideoX's schedulers use
/// it.
/// </summary>
internal static class NoiseSchedule
{
    /// <summary>ᾱ of a scheduler's <c>__init__</c> in float32: the betas of <paramref name="schedule"/>
    /// (or <paramref name="trainedBetas"/> when given), optionally rescaled to zero terminal SNR, then
    /// their cumulative product.</summary>
    public static float[] AlphasCumprod(string scheduler, int count, BetaSchedule schedule, double betaStart, double betaEnd,
        IReadOnlyList<double>? trainedBetas, bool rescaleZeroTerminalSnr)
    {
        var betas = Betas(scheduler, count, schedule, betaStart, betaEnd, trainedBetas);
        if (rescaleZeroTerminalSnr) betas = RescaleBetasZeroTerminalSnr(betas);
        return AlphasCumprod(betas);
    }

    /// <summary>
    /// ᾱ as CogVideoX's schedulers build it: the scaled-linear betas in float64 (other schedules in
    /// float32, as there), ᾱ divided by s + (1 − s)·ᾱ (the SD3-style SNR shift by
    /// <paramref name="snrShiftScale"/>), then optionally rescaled to zero terminal SNR on ᾱ itself,
    /// all in float64.
    /// </summary>
    public static double[] CogVideoXAlphasCumprod(string scheduler, int count, BetaSchedule schedule, double betaStart,
        double betaEnd, IReadOnlyList<double>? trainedBetas, double snrShiftScale, bool rescaleZeroTerminalSnr)
    {
        double[] alphasCumprod;
        if (schedule == BetaSchedule.ScaledLinear && trainedBetas is null)
        {
            CheckCount(count);
            var roots = TorchLinspace(Math.Sqrt(betaStart), Math.Sqrt(betaEnd), count);
            alphasCumprod = new double[count];
            double product = 1;
            for (int i = 0; i < count; i++) alphasCumprod[i] = product *= 1 - roots[i] * roots[i];
        }
        else
        {
            alphasCumprod = Array.ConvertAll(AlphasCumprod(Betas(scheduler, count, schedule, betaStart, betaEnd, trainedBetas)), a => (double)a);
        }
        for (int i = 0; i < count; i++)
            alphasCumprod[i] /= snrShiftScale + (1 - snrShiftScale) * alphasCumprod[i];
        if (!rescaleZeroTerminalSnr) return alphasCumprod;

        var roots0 = Math.Sqrt(alphasCumprod[0]);
        var rootsT = Math.Sqrt(alphasCumprod[^1]);
        var scale = roots0 / (roots0 - rootsT);
        return Array.ConvertAll(alphasCumprod, a =>
        {
            var root = (Math.Sqrt(a) - rootsT) * scale;
            return root * root;
        });
    }

    /// <summary>The betas of diffusers' <c>__init__</c> as float32.</summary>
    static float[] Betas(string scheduler, int count, BetaSchedule schedule, double betaStart, double betaEnd,
        IReadOnlyList<double>? trainedBetas)
    {
        CheckCount(count);
        if (trainedBetas is not null)
        {
            if (trainedBetas.Count != count)
                throw new ArgumentException($"{scheduler}: {trainedBetas.Count} trained betas for {count} training timesteps");
            return trainedBetas.Select(b => (float)b).ToArray();
        }
        switch (schedule)
        {
            case BetaSchedule.Linear:
                return TorchLinspace((float)betaStart, (float)betaEnd, count);
            case BetaSchedule.ScaledLinear:
                var roots = TorchLinspace((float)Math.Sqrt(betaStart), (float)Math.Sqrt(betaEnd), count);
                return Array.ConvertAll(roots, r => r * r);
            case BetaSchedule.SquaredCosCapV2:
                return CosineBetas(count);
            default:
                throw new ArgumentOutOfRangeException(nameof(schedule), schedule, $"{scheduler}: unknown beta schedule");
        }
    }

    static void CheckCount(int count)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "num_train_timesteps must be at least 1");
    }

    /// <summary>ᾱ_t = cumprod(1 − β) as torch computes it on the CPU: 1 − β in float32, the running
    /// product accumulated in double (torch's CPU cumprod accumulates float32 in double) and each
    /// prefix rounded to float32.</summary>
    static float[] AlphasCumprod(ReadOnlySpan<float> betas)
    {
        var result = new float[betas.Length];
        double product = 1;
        for (int i = 0; i < betas.Length; i++)
        {
            product *= 1f - betas[i];
            result[i] = (float)product;
        }
        return result;
    }

    /// <summary>diffusers' <c>rescale_zero_terminal_snr</c> on float32 betas (Lin et al. 2023,
    /// algorithm 1): shifts and scales √ᾱ so the last timestep has zero signal and the first keeps its
    /// value, then returns the betas of that ᾱ.</summary>
    static float[] RescaleBetasZeroTerminalSnr(ReadOnlySpan<float> betas)
    {
        var alphasCumprod = AlphasCumprod(betas);
        var roots = Array.ConvertAll(alphasCumprod, MathF.Sqrt);
        float first = roots[0], last = roots[^1];
        var scale = first / (first - last);
        var rescaled = new float[roots.Length];
        for (int i = 0; i < roots.Length; i++)
        {
            var root = (roots[i] - last) * scale;
            rescaled[i] = root * root;
        }
        var result = new float[rescaled.Length];
        result[0] = 1f - rescaled[0];
        for (int i = 1; i < rescaled.Length; i++) result[i] = 1f - rescaled[i] / rescaled[i - 1];
        return result;
    }

    /// <summary>
    /// <c>torch.linspace(start, end, count)</c> in float32 or float64 as the CPU kernel of the torch build
    /// that made diffusers' reference tables computes it (AVX2: vectors of 32 bytes, multiply-adds
    /// fused): the step in <typeparamref name="T"/>; each vector starts at a base counted up from
    /// <paramref name="start"/> (vectors starting in the first half) or down from <paramref name="end"/>,
    /// and lane j adds j·step to its base; a scalar tail counts from the ends directly. This reproduces
    /// the golden float32 ᾱ tables bit for bit; the textbook formula start + i·step differs in the last
    /// bit of about a quarter of the betas, which moves ᾱ by ~1e-7.
    /// </summary>
    static T[] TorchLinspace<T>(T start, T end, int count) where T : IFloatingPointIeee754<T>
    {
        var lanes = typeof(T) == typeof(double) ? 4 : 8;
        var values = new T[count];
        if (count == 1)
        {
            values[0] = start;
            return values;
        }
        var step = (end - start) / T.CreateChecked(count - 1);
        var halfway = count / 2;
        T FromEnds(int i) => i < halfway
            ? T.FusedMultiplyAdd(step, T.CreateChecked(i), start)
            : T.FusedMultiplyAdd(-step, T.CreateChecked(count - i - 1), end);
        var vectorized = count / lanes * lanes;
        for (int i = 0; i < vectorized; i += lanes)
        {
            var vectorBase = FromEnds(i);
            for (int lane = 0; lane < lanes; lane++) values[i + lane] = T.FusedMultiplyAdd(T.CreateChecked(lane), step, vectorBase);
        }
        for (int i = vectorized; i < count; i++) values[i] = FromEnds(i);
        return values;
    }

    /// <summary>diffusers' <c>betas_for_alpha_bar</c> with the cosine ᾱ(t) = cos²((t + 0.008)/1.008 · π/2),
    /// in double, capped at 0.999.</summary>
    static float[] CosineBetas(int count)
    {
        static double AlphaBar(double t)
        {
            var c = Math.Cos((t + 0.008) / 1.008 * Math.PI / 2);
            return c * c;
        }

        var betas = new float[count];
        for (int i = 0; i < count; i++)
        {
            var t1 = i / (double)count;
            var t2 = (i + 1) / (double)count;
            betas[i] = (float)Math.Min(1 - AlphaBar(t2) / AlphaBar(t1), 0.999);
        }
        return betas;
    }
}
