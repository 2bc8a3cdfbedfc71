using System.Text.Json;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// Deterministic DDIM (diffusers' <c>DDIMScheduler</c> with <c>eta = 0</c>, the pipelines' default):
/// HunyuanDiT's DDIM sampler, and CogVideoX's (<c>CogVideoXDDIMScheduler</c>, see
/// <see cref="FromCogVideoXConfig"/>).
/// </summary>
/// <remarks>
/// <para>Step i at timestep t goes to t' = t − T // n (T training timesteps, n inference steps; this is
/// not always the next timestep of the list, e.g. with trailing spacing and n not dividing T), with
/// a = ᾱ_t and a' = ᾱ_t' (1, or ᾱ_0 without <see cref="DdimOptions.SetAlphaToOne"/>, once t' &lt; 0).
/// From the model output it predicts x̂₀ and ε̂ (epsilon: x̂₀ = (x − √(1−a) ε)/√a; v:
/// x̂₀ = √a x − √(1−a) v, ε̂ = √a v + √(1−a) x; sample: ε̂ = (x − √a x̂₀)/√(1−a)), optionally clamps
/// x̂₀, and returns x' = √a' x̂₀ + √(1−a') ε̂. Without clamping this is one linear combination of x and
/// the model output, whose two coefficients are computed in double.</para>
/// <para>Stateless: slices need no bookkeeping. Stochastic DDIM (eta &gt; 0) and thresholding are not
/// implemented.</para>
/// </remarks>
public sealed class DdimScheduler : IScheduler
{
    const string Name = nameof(DdimScheduler);

    readonly double[] _alphasCumprod;
    readonly double _finalAlphaCumprod;
    double[] _timesteps = [];
    int _stepCount;

    public DdimScheduler(DdimOptions? options = null)
    {
        Options = options ?? new DdimOptions();
        _alphasCumprod = Options.AlphasCumprod(Name);
        _finalAlphaCumprod = Options.SetAlphaToOne ? 1.0 : _alphasCumprod[0];
    }

    /// <summary>A scheduler from the object of a diffusers <c>scheduler_config.json</c> (fields missing
    /// there take diffusers' defaults).</summary>
    /// <exception cref="NotSupportedException">The config asks for thresholding.</exception>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static DdimScheduler FromConfig(JsonElement config)
    {
        var c = new SchedulerConfig(config, "DDIMScheduler");
        c.RejectIfTrue("thresholding");
        return new DdimScheduler(new DdimOptions
        {
            NumTrainTimesteps = c.Int("num_train_timesteps", 1000),
            BetaStart = c.Double("beta_start", 0.0001),
            BetaEnd = c.Double("beta_end", 0.02),
            BetaSchedule = c.BetaSchedule(BetaSchedule.Linear),
            TrainedBetas = c.DoubleArray("trained_betas"),
            ClipSample = c.Bool("clip_sample", true),
            ClipSampleRange = c.Double("clip_sample_range", 1.0),
            SetAlphaToOne = c.Bool("set_alpha_to_one", true),
            StepsOffset = c.Int("steps_offset", 0),
            PredictionType = c.PredictionType(PredictionType.Epsilon),
            TimestepSpacing = c.TimestepSpacing(TimestepSpacing.Leading),
            RescaleBetasZeroSnr = c.Bool("rescale_betas_zero_snr", false),
        });
    }

    /// <summary>CogVideoX's DDIM (diffusers' <c>CogVideoXDDIMScheduler</c>) from the object of its
    /// <c>scheduler_config.json</c>, with that class's defaults (scaled-linear 0.00085 to 0.012, SNR shift
    /// 3). Its step, a_t·x + b_t·x̂₀ with a_t = √((1 − a')/(1 − a)) and b_t = √a' − √a·a_t, is DDIM's
    /// written differently; it never clips, whatever <c>clip_sample</c> says.</summary>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static DdimScheduler FromCogVideoXConfig(JsonElement config) =>
        new(DdimOptions.ReadCogVideoX(new SchedulerConfig(config, "CogVideoXDDIMScheduler")));

    public DdimOptions Options { get; }

    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>ᾱ_t of the training timesteps as diffusers computes it: float32 values, or float64 with
    /// <see cref="DdimOptions.SnrShiftScale"/>.</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;

    public double InitNoiseSigma => 1.0;

    /// <summary>Timesteps spaced by <see cref="DdimOptions.TimestepSpacing"/>: for n steps out of T,
    /// <c>round(linspace(0, T − 1, n))</c> reversed (linspace); multiples of <c>T // n</c> from n − 1 down
    /// to 0, plus <c>steps_offset</c> (leading; HunyuanDiT: 981, 961, …, 1 for 50 steps);
    /// <c>round(arange(T, 0, −T/n)) − 1</c> (trailing; CogVideoX: 999, 979, …, 19 for 50 steps).</summary>
    public void SetTimesteps(int steps)
    {
        var timesteps = DiscreteTimesteps.Spaced(Name, Options.TimestepSpacing, Options.NumTrainTimesteps, steps, Options.StepsOffset);
        _timesteps = Array.ConvertAll(timesteps, t => (double)t);
        _stepCount = steps;
    }

    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, int slice = 0)
    {
        StepArguments.Check(Name, _timesteps.Length, modelOutput, stepIndex, sample);
        var t = (int)_timesteps[stepIndex];
        var previousT = t - Options.NumTrainTimesteps / _stepCount;
        var a = _alphasCumprod[t];
        var aPrevious = previousT >= 0 ? _alphasCumprod[previousT] : _finalAlphaCumprod;
        var (x0FromSample, x0FromOutput, epsFromSample, epsFromOutput) = Predictions(Options.PredictionType, a);
        // x' = √a'·x̂₀ + √(1 − a')·ε̂
        double toX0 = Math.Sqrt(aPrevious), toEps = Math.Sqrt(1 - aPrevious);

        using var scope = new TensorScope();
        var x = LatentMath.InFloat32(sample);
        var m = LatentMath.InFloat32(modelOutput);
        Tensor result;
        if (Options.ClipSample)
        {
            var x0 = LatentMath.Combine((x0FromSample, x), (x0FromOutput, m));
            Elementwise.Clamp(x0, -Options.ClipSampleRange, Options.ClipSampleRange, x0);
            var eps = LatentMath.Combine((epsFromSample, x), (epsFromOutput, m));
            result = LatentMath.Combine((toX0, x0), (toEps, eps));
        }
        else
        {
            result = LatentMath.Combine((toX0 * x0FromSample + toEps * epsFromSample, x), (toX0 * x0FromOutput + toEps * epsFromOutput, m));
        }
        return LatentMath.Finish(result, sample);
    }

    /// <summary>DDIM keeps no history.</summary>
    public void Reset()
    {
    }

    public void Dispose()
    {
    }

    /// <summary>x̂₀ and ε̂ as linear combinations of the sample and the model output at ᾱ = <paramref name="a"/>
    /// (diffusers' DDIM; DDPM and CogVideoX's DPM-Solver use the x̂₀ part).</summary>
    internal static (double X0FromSample, double X0FromOutput, double EpsFromSample, double EpsFromOutput) Predictions(
        PredictionType prediction, double a)
    {
        double signal = Math.Sqrt(a), noise = Math.Sqrt(1 - a);
        return prediction switch
        {
            PredictionType.Epsilon => (1 / signal, -noise / signal, 0, 1),
            PredictionType.VPrediction => (signal, -noise, noise, signal),
            _ => (0, 1, 1 / noise, -signal / noise),
        };
    }
}
