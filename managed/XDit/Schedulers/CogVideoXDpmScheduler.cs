using System.Text.Json;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// CogVideoX's stochastic DPM-Solver (diffusers' <c>CogVideoXDPMScheduler</c>, the default of the
/// CogVideoX-5b pipeline), on the DDIM timesteps and ᾱ table of <see cref="DdimOptions"/> (CogVideoX's
/// configs set <see cref="DdimOptions.SnrShiftScale"/>).
/// </summary>
/// <remarks>
/// <para>Step i at timestep t goes to t' = t − T // n with a = ᾱ_t, a' = ᾱ_t' (1, or ᾱ_0 without
/// <see cref="DdimOptions.SetAlphaToOne"/>, once t' &lt; 0) and λ(a) = log √(a/(1 − a)),
/// h = λ(a') − λ(a). From x̂₀ (predicted as DDIM does) it takes x' = m₁·x − m₂·D + c·noise with
/// m₁ = √((1 − a')/(1 − a))·e^(−h), m₂ = expm1(−2h)·√a', c = √(1 − a')·√(1 − e^(−2h)), and D = x̂₀ on
/// the first step, on the last (t' &lt; 0) and for a slice without history; otherwise, with the
/// previous step's x̂₀ and r = (λ(a) − λ(ᾱ of the previous timestep))/h,
/// D = (1 + 1/(2r))·x̂₀ − (1/(2r))·x̂₀_prev. These are the pipeline's calls
/// <c>step(v, old_x0, t, timesteps[i − 1], x)</c>.</para>
/// <para>The previous x̂₀ is kept per slice id (see <see cref="IScheduler"/>) and the noise is the
/// caller's (see <see cref="IStochasticScheduler"/>), so sliced steps equal the whole-latent step bit
/// for bit. diffusers draws the noise twice on second-order steps and uses the second draw.</para>
/// </remarks>
public sealed class CogVideoXDpmScheduler : IStochasticScheduler
{
    const string Name = nameof(CogVideoXDpmScheduler);

    readonly double[] _alphasCumprod;
    readonly double _finalAlphaCumprod;
    readonly SliceHistory _history = new(Name);
    double[] _timesteps = [];
    int _stepCount;

    public CogVideoXDpmScheduler(DdimOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Options = options;
        _alphasCumprod = Options.AlphasCumprod(Name);
        _finalAlphaCumprod = Options.SetAlphaToOne ? 1.0 : _alphasCumprod[0];
    }

    /// <summary>A scheduler from the object of a diffusers <c>scheduler_config.json</c> of
    /// <c>CogVideoXDPMScheduler</c>, with that class's defaults (scaled-linear 0.00085 to 0.012, SNR
    /// shift 3; <c>clip_sample</c> is ignored, as diffusers ignores it).</summary>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static CogVideoXDpmScheduler FromConfig(JsonElement config) =>
        new(DdimOptions.ReadCogVideoX(new SchedulerConfig(config, "CogVideoXDPMScheduler")));

    public DdimOptions Options { get; }

    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>ᾱ_t of the training timesteps as diffusers computes it (float64 for CogVideoX's configs).</summary>
    public IReadOnlyList<double> AlphasCumprod => _alphasCumprod;

    public double InitNoiseSigma => 1.0;

    /// <summary>Timesteps spaced as DDIM spaces them (see <see cref="DdimScheduler.SetTimesteps"/>); forgets
    /// the history of any previous generation.</summary>
    public void SetTimesteps(int steps)
    {
        _timesteps = Array.ConvertAll(
            DiscreteTimesteps.Spaced(Name, Options.TimestepSpacing, Options.NumTrainTimesteps, steps, Options.StepsOffset),
            t => (double)t);
        _stepCount = steps;
        _history.Clear();
    }

    /// <summary>Two draws on second-order steps (every step but the first and the last), else one.</summary>
    public int NoiseDraws(int stepIndex)
    {
        StepArguments.CheckIndex(Name, _timesteps.Length, stepIndex);
        return stepIndex > 0 && PreviousTimestep(stepIndex) >= 0 ? 2 : 1;
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
        StepArguments.CheckNoise(Name, stepIndex, NoiseDraws(stepIndex), noise, sample);

        var previousT = PreviousTimestep(stepIndex);
        var a = _alphasCumprod[(int)_timesteps[stepIndex]];
        var aNext = previousT >= 0 ? _alphasCumprod[previousT] : _finalAlphaCumprod;
        var h = Lambda(aNext) - Lambda(a);
        var toSample = Math.Sqrt((1 - aNext) / (1 - a)) * Math.Exp(-h);
        var m2 = (Math.Exp(-2 * h) - 1) * Math.Sqrt(aNext); // diffusers: expm1; the steps of a schedule keep h large enough
        var toNoise = Math.Sqrt(1 - aNext) * Math.Sqrt(1 - Math.Exp(-2 * h));
        var (x0FromSample, x0FromOutput, _, _) = DdimScheduler.Predictions(Options.PredictionType, a);

        using var scope = new TensorScope();
        var x = LatentMath.InFloat32(sample);
        var x0 = LatentMath.Combine((x0FromSample, x), (x0FromOutput, LatentMath.InFloat32(modelOutput)));
        var previousX0 = _history.Previous(slice, stepIndex, x0);
        var z = LatentMath.InFloat32(noise!);
        Tensor result;
        if (previousX0 is null || previousT < 0)
        {
            result = LatentMath.Combine((toSample, x), (-m2, x0), (toNoise, z));
        }
        else
        {
            var r = (Lambda(a) - Lambda(_alphasCumprod[(int)_timesteps[stepIndex - 1]])) / h;
            result = LatentMath.Combine((toSample, x), (-m2 * (1 + 1 / (2 * r)), x0), (m2 / (2 * r), previousX0), (toNoise, z));
        }
        _history.Record(slice, stepIndex, x0);
        return LatentMath.Finish(result, sample);
    }

    public void Reset() => _history.Clear();

    public void Dispose() => _history.Dispose();

    int PreviousTimestep(int stepIndex) => (int)_timesteps[stepIndex] - Options.NumTrainTimesteps / _stepCount;

    /// <summary>Half the log-SNR, log √(a/(1 − a)) (−∞ at a = 0, +∞ at a = 1).</summary>
    static double Lambda(double a) => Math.Log(Math.Sqrt(a / (1 - a)));
}
