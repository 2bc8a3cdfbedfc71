using System.Text.Json;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// Ancestral DDPM sampling (diffusers' <c>DDPMScheduler</c>): HunyuanDiT's default sampler.
/// </summary>
/// <remarks>
/// <para>Step i at timestep t goes to the next timestep of the list, t' (−1 after the last), with
/// a = ᾱ_t, a' = ᾱ_t' (1 for t' &lt; 0) and β = 1 − a/a'. It predicts x̂₀ from the model output as DDIM
/// does (see <see cref="DdimScheduler"/>), optionally clamps it, and returns the posterior mean
/// (√a'·β/(1 − a))·x̂₀ + (√(a/a')·(1 − a')/(1 − a))·x plus, for t &gt; 0, √variance times the step's
/// noise (see <see cref="DdpmVarianceType"/>). The noise is the caller's: see
/// <see cref="IStochasticScheduler"/>.</para>
/// <para>Stateless apart from the noise: slices need no bookkeeping. Thresholding and the learned
/// variance types are not implemented.</para>
/// </remarks>
public sealed class DdpmScheduler : IStochasticScheduler
{
    const string Name = nameof(DdpmScheduler);

    readonly double[] _alphasCumprod;
    double[] _timesteps = [];

    public DdpmScheduler(DdpmOptions? options = null)
    {
        Options = options ?? new DdpmOptions();
        _alphasCumprod = Array.ConvertAll(NoiseSchedule.AlphasCumprod(Name, Options.NumTrainTimesteps, Options.BetaSchedule,
            Options.BetaStart, Options.BetaEnd, Options.TrainedBetas, Options.RescaleBetasZeroSnr), a => (double)a);
    }

    /// <summary>A scheduler from the object of a diffusers <c>scheduler_config.json</c> (fields missing
    /// there take diffusers' defaults).</summary>
    /// <exception cref="NotSupportedException">The config asks for thresholding or a learned variance.</exception>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static DdpmScheduler FromConfig(JsonElement config)
    {
        var c = new SchedulerConfig(config, "DDPMScheduler");
        c.RejectIfTrue("thresholding");
        return new DdpmScheduler(new DdpmOptions
        {
            NumTrainTimesteps = c.Int("num_train_timesteps", 1000),
            BetaStart = c.Double("beta_start", 0.0001),
            BetaEnd = c.Double("beta_end", 0.02),
            BetaSchedule = c.BetaSchedule(BetaSchedule.Linear),
            TrainedBetas = c.DoubleArray("trained_betas"),
            VarianceType = c.Choice("variance_type", DdpmVarianceType.FixedSmall, new Dictionary<string, DdpmVarianceType>
            {
                ["fixed_small"] = DdpmVarianceType.FixedSmall,
                ["fixed_small_log"] = DdpmVarianceType.FixedSmall,
                ["fixed_large"] = DdpmVarianceType.FixedLarge,
            }, "fixed_large_log", "learned", "learned_range"),
            ClipSample = c.Bool("clip_sample", true),
            ClipSampleRange = c.Double("clip_sample_range", 1.0),
            PredictionType = c.PredictionType(PredictionType.Epsilon),
            TimestepSpacing = c.TimestepSpacing(TimestepSpacing.Leading),
            StepsOffset = c.Int("steps_offset", 0),
            RescaleBetasZeroSnr = c.Bool("rescale_betas_zero_snr", false),
        });
    }

    public DdpmOptions Options { get; }

    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>ᾱ_t of the training timesteps, float32 values as diffusers computes them.</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;

    public double InitNoiseSigma => 1.0;

    /// <summary>Timesteps spaced as DDIM spaces them (see <see cref="DdimScheduler.SetTimesteps"/>).</summary>
    public void SetTimesteps(int steps) =>
        _timesteps = Array.ConvertAll(
            DiscreteTimesteps.Spaced(Name, Options.TimestepSpacing, Options.NumTrainTimesteps, steps, Options.StepsOffset),
            t => (double)t);

    /// <summary>One draw for every step at a timestep above 0.</summary>
    public int NoiseDraws(int stepIndex)
    {
        StepArguments.CheckIndex(Name, _timesteps.Length, stepIndex);
        return _timesteps[stepIndex] > 0 ? 1 : 0;
    }

    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, int slice = 0)
    {
        StepArguments.Check(Name, _timesteps.Length, modelOutput, stepIndex, sample);
        StepArguments.RejectMissingNoise(Name, stepIndex, NoiseDraws(stepIndex));
        return Step(modelOutput, stepIndex, sample, null, slice);
    }

    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, Tensor? noise, int slice = 0)
    {
        StepArguments.Check(Name, _timesteps.Length, modelOutput, stepIndex, sample);
        var draws = NoiseDraws(stepIndex);
        StepArguments.CheckNoise(Name, stepIndex, draws, noise, sample);

        var t = (int)_timesteps[stepIndex];
        var previousT = stepIndex + 1 < _timesteps.Length ? (int)_timesteps[stepIndex + 1] : -1;
        var a = _alphasCumprod[t];
        var aPrevious = previousT >= 0 ? _alphasCumprod[previousT] : 1.0;
        var beta = 1 - a / aPrevious;
        var (x0FromSample, x0FromOutput, _, _) = DdimScheduler.Predictions(Options.PredictionType, a);
        // mean = toX0·x̂₀ + toSample·x
        var toX0 = Math.Sqrt(aPrevious) * beta / (1 - a);
        var toSample = Math.Sqrt(a / aPrevious) * (1 - aPrevious) / (1 - a);
        var variance = Options.VarianceType == DdpmVarianceType.FixedSmall ? Math.Max((1 - aPrevious) / (1 - a) * beta, 1e-20) : beta;

        using var scope = new TensorScope();
        var x = LatentMath.InFloat32(sample);
        var m = LatentMath.InFloat32(modelOutput);
        var terms = new List<(double, Tensor)>();
        if (Options.ClipSample)
        {
            var x0 = LatentMath.Combine((x0FromSample, x), (x0FromOutput, m));
            Elementwise.Clamp(x0, -Options.ClipSampleRange, Options.ClipSampleRange, x0);
            terms.Add((toX0, x0));
            terms.Add((toSample, x));
        }
        else
        {
            terms.Add((toX0 * x0FromSample + toSample, x));
            terms.Add((toX0 * x0FromOutput, m));
        }
        if (draws > 0) terms.Add((Math.Sqrt(variance), LatentMath.InFloat32(noise!)));
        return LatentMath.Finish(LatentMath.Combine([.. terms]), sample);
    }

    /// <summary>DDPM keeps no history.</summary>
    public void Reset()
    {
    }

    public void Dispose()
    {
    }
}
