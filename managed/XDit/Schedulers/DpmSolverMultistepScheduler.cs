using System.Text.Json;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// DPM-Solver++ multistep (diffusers' <c>DPMSolverMultistepScheduler</c>, algorithm
/// <c>dpmsolver++</c>, orders 1 and 2): PixArt's scheduler.
/// </summary>
/// <remarks>
/// <para>Sigmas are the VP noise-to-signal ratios S = √((1 − ᾱ)/ᾱ) of the training schedule at the
/// inference timesteps, then a final one (0 for <see cref="FinalSigmaType.Zero"/>). With
/// α(S) = 1/√(S² + 1), σ(S) = S·α(S) and λ(S) = log α − log σ, step i goes from S_i to S_(i+1) with
/// h = λ(S_(i+1)) − λ(S_i). It first turns the model output into x̂₀ (epsilon: (x − σ_i ε)/α_i;
/// v: α_i x − σ_i v; sample: the output itself), then takes</para>
/// <list type="bullet">
/// <item>first order, x' = (σ_(i+1)/σ_i) x − α_(i+1)(e^(−h) − 1) x̂₀: on the first step, on the last step
/// when it is "lower order final" (final sigma zero, Euler at final, or fewer than 15 steps), and
/// always for <see cref="DpmSolverMultistepOptions.SolverOrder"/> 1;</item>
/// <item>second order otherwise, from the x̂₀ of the previous step: with r = h_(i−1)/h and
/// D1 = (x̂₀_i − x̂₀_(i−1))/r, midpoint adds −½α_(i+1)(e^(−h) − 1)·D1, Heun adds
/// α_(i+1)((e^(−h) − 1)/h + 1)·D1.</item>
/// </list>
/// <para>The previous x̂₀ is kept per slice id (see <see cref="IScheduler"/>), so a PipeFusion step
/// over row bands equals the whole-latent step bit for bit. Thresholding, the SDE and noise-prediction
/// (<c>dpmsolver</c>) variants, third order and the Karras/exponential/beta/Lu/flow sigma schedules are
/// not implemented; <see cref="FromConfig"/> rejects configs that ask for them.</para>
/// </remarks>
public sealed class DpmSolverMultistepScheduler : IScheduler
{
    const string Name = nameof(DpmSolverMultistepScheduler);

    readonly float[] _trainSigmas;
    readonly int _lastTimestep;
    readonly SliceHistory _history = new(Name);
    double[] _timesteps = [];
    double[] _sigmas = [];

    public DpmSolverMultistepScheduler(DpmSolverMultistepOptions? options = null)
    {
        Options = options ?? new DpmSolverMultistepOptions();
        if (Options.SolverOrder == 3)
            throw new NotSupportedException($"{Name}: solver_order 3 (third-order DPM-Solver++) is not supported by this engine");
        if (Options.SolverOrder is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(options), Options.SolverOrder, $"{Name}: solver_order must be 1 or 2");
        var alphasCumprod = NoiseSchedule.AlphasCumprod(Name, Options.NumTrainTimesteps, Options.BetaSchedule, Options.BetaStart,
            Options.BetaEnd, Options.TrainedBetas, Options.RescaleBetasZeroSnr);
        if (Options.RescaleBetasZeroSnr)
            alphasCumprod[^1] = 1f / (1 << 24); // as diffusers: close to 0 so the first sigma stays finite
        AlphasCumprod = Array.ConvertAll(alphasCumprod, a => (double)a);
        _trainSigmas = Array.ConvertAll(alphasCumprod, a => MathF.Sqrt((1f - a) / a));
        _lastTimestep = Options.NumTrainTimesteps - CountClippedTimesteps(alphasCumprod, Options.LambdaMinClipped);
    }

    /// <summary>A scheduler from the object of a diffusers <c>scheduler_config.json</c> (fields missing
    /// there take diffusers' defaults).</summary>
    /// <exception cref="NotSupportedException">The config asks for an option this engine does not implement.</exception>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static DpmSolverMultistepScheduler FromConfig(JsonElement config)
    {
        var c = new SchedulerConfig(config, "DPMSolverMultistepScheduler");
        foreach (var option in new[] { "thresholding", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas" })
            c.RejectIfTrue(option);
        // diffusers itself maps "deis" to dpmsolver++ and the UniPC solver types to midpoint.
        c.Require("algorithm_type", ["dpmsolver++", "deis"], "dpmsolver", "sde-dpmsolver", "sde-dpmsolver++");
        // diffusers cuts a learned variance off the model output (its first 3 channels); the pipelines
        // split it off themselves, so a config asking for that is rejected. Other values are ignored,
        // as diffusers ignores them.
        var variance = c.String("variance_type");
        if (variance is "learned" or "learned_range")
            throw c.NotSupported("variance_type", $"\"{variance}\" (split the learned variance off the model output before stepping)");
        return new DpmSolverMultistepScheduler(new DpmSolverMultistepOptions
        {
            NumTrainTimesteps = c.Int("num_train_timesteps", 1000),
            BetaStart = c.Double("beta_start", 0.0001),
            BetaEnd = c.Double("beta_end", 0.02),
            BetaSchedule = c.BetaSchedule(BetaSchedule.Linear),
            TrainedBetas = c.DoubleArray("trained_betas"),
            SolverOrder = c.Int("solver_order", 2),
            PredictionType = c.PredictionType(PredictionType.Epsilon, "flow_prediction"),
            SolverType = c.Choice("solver_type", DpmSolverType.Midpoint, new Dictionary<string, DpmSolverType>
            {
                ["midpoint"] = DpmSolverType.Midpoint,
                ["heun"] = DpmSolverType.Heun,
                ["logrho"] = DpmSolverType.Midpoint,
                ["bh1"] = DpmSolverType.Midpoint,
                ["bh2"] = DpmSolverType.Midpoint,
            }),
            LowerOrderFinal = c.Bool("lower_order_final", true),
            EulerAtFinal = c.Bool("euler_at_final", false),
            FinalSigmaType = c.Choice("final_sigmas_type", FinalSigmaType.Zero, new Dictionary<string, FinalSigmaType>
            {
                ["zero"] = FinalSigmaType.Zero,
                ["sigma_min"] = FinalSigmaType.SigmaMin,
            }),
            LambdaMinClipped = c.Double("lambda_min_clipped", double.NegativeInfinity),
            TimestepSpacing = c.TimestepSpacing(TimestepSpacing.Linspace),
            StepsOffset = c.Int("steps_offset", 0),
            RescaleBetasZeroSnr = c.Bool("rescale_betas_zero_snr", false),
        });
    }

    public DpmSolverMultistepOptions Options { get; }

    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>The float32 sigma of each step and the final one (one more than <see cref="Timesteps"/>).</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    /// <summary>ᾱ_t of the training timesteps, float32 values as diffusers computes them.</summary>
    public IReadOnlyList<double> AlphasCumprod { get; }

    public double InitNoiseSigma => 1.0;

    /// <summary>
    /// <see cref="TimestepSpacing.Linspace"/>: <c>round(linspace(0, T_last − 1, n + 1))</c> reversed,
    /// without its last (zero) element; <see cref="TimestepSpacing.Leading"/>: multiples of
    /// <c>T_last // (n + 1)</c> from n down to 1, plus <c>steps_offset</c>;
    /// <see cref="TimestepSpacing.Trailing"/>: <c>round(arange(T_last, 0, −T/n)) − 1</c>. T_last is the
    /// training timestep count less those clipped by <c>lambda_min_clipped</c>. Trailing spacing can
    /// give a different number of timesteps than <paramref name="steps"/> when timesteps are clipped,
    /// as in diffusers.
    /// </summary>
    public void SetTimesteps(int steps)
    {
        StepArguments.CheckStepCount(Name, steps);
        var timesteps = Options.TimestepSpacing switch
        {
            TimestepSpacing.Linspace => NumPyRanges.Linspace(0, _lastTimestep - 1, steps + 1)
                .Select(NumPyRanges.Round).Reverse().SkipLast(1).ToArray(),
            TimestepSpacing.Leading => Enumerable.Range(0, steps + 1).Select(i => (long)i * (_lastTimestep / (steps + 1)))
                .Reverse().SkipLast(1).Select(t => t + Options.StepsOffset).ToArray(),
            _ => NumPyRanges.Arange(_lastTimestep, 0, -(Options.NumTrainTimesteps / (double)steps))
                .Select(t => NumPyRanges.Round(t) - 1).ToArray(),
        };
        var sigmas = new double[timesteps.Length + 1];
        for (int i = 0; i < timesteps.Length; i++)
            sigmas[i] = _trainSigmas[Math.Clamp(timesteps[i], 0, _trainSigmas.Length - 1)]; // np.interp holds the ends
        sigmas[^1] = Options.FinalSigmaType == FinalSigmaType.Zero ? 0 : _trainSigmas[0];
        _timesteps = Array.ConvertAll(timesteps, t => (double)t);
        _sigmas = sigmas;
        _history.Clear();
    }

    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, int slice = 0)
    {
        StepArguments.Check(Name, _timesteps.Length, modelOutput, stepIndex, sample);
        using var scope = new TensorScope();
        var x = LatentMath.InFloat32(sample);
        var (alphaS, sigmaS) = AlphaSigma(_sigmas[stepIndex]);
        var x0 = PredictX0(LatentMath.InFloat32(modelOutput), x, alphaS, sigmaS);
        var previousX0 = _history.Previous(slice, stepIndex, x0);

        var count = _timesteps.Length;
        var lowerOrderFinal = stepIndex == count - 1 &&
            (Options.EulerAtFinal || (Options.LowerOrderFinal && count < 15) || Options.FinalSigmaType == FinalSigmaType.Zero);
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[stepIndex + 1]);
        var h = Lambda(alphaT, sigmaT) - Lambda(alphaS, sigmaS);
        var decay = alphaT * (Math.Exp(-h) - 1); // α_t(e^(−h) − 1), multiplies x̂₀ with a minus sign
        Tensor result;
        if (Options.SolverOrder == 1 || previousX0 is null || lowerOrderFinal)
        {
            result = LatentMath.Combine((sigmaT / sigmaS, x), (-decay, x0));
        }
        else
        {
            var (alphaPrevious, sigmaPrevious) = AlphaSigma(_sigmas[stepIndex - 1]);
            var r = (Lambda(alphaS, sigmaS) - Lambda(alphaPrevious, sigmaPrevious)) / h;
            // x' = (σ_t/σ_s) x − decay·x̂₀ + w·D1 with D1 = (x̂₀ − x̂₀_prev)/r.
            var w = Options.SolverType == DpmSolverType.Midpoint ? -0.5 * decay : alphaT * ((Math.Exp(-h) - 1) / h + 1);
            result = LatentMath.Combine((sigmaT / sigmaS, x), (-decay + w / r, x0), (-w / r, previousX0));
        }
        _history.Record(slice, stepIndex, x0);
        return LatentMath.Finish(result, sample);
    }

    public void Reset() => _history.Clear();

    public void Dispose() => _history.Dispose();

    /// <summary>x̂₀ from the model output (diffusers' <c>convert_model_output</c> for dpmsolver++), as a
    /// new tensor: it is kept as history.</summary>
    Tensor PredictX0(Tensor modelOutput, Tensor x, double alpha, double sigma) => Options.PredictionType switch
    {
        PredictionType.Epsilon => LatentMath.Combine((1 / alpha, x), (-sigma / alpha, modelOutput)),
        PredictionType.VPrediction => LatentMath.Combine((alpha, x), (-sigma, modelOutput)),
        _ => modelOutput.Clone(),
    };

    /// <summary>α and σ of the VP process at noise-to-signal ratio <paramref name="s"/>.</summary>
    static (double Alpha, double Sigma) AlphaSigma(double s)
    {
        var alpha = 1 / Math.Sqrt(s * s + 1);
        return (alpha, s * alpha);
    }

    /// <summary>Half the log-SNR, log α − log σ (+∞ at σ = 0).</summary>
    static double Lambda(double alpha, double sigma) => Math.Log(alpha) - Math.Log(sigma);

    /// <summary>How many of the highest timesteps have λ below <c>lambda_min_clipped</c> (diffusers'
    /// <c>searchsorted</c> over the flipped float32 λ table).</summary>
    static int CountClippedTimesteps(float[] alphasCumprod, double lambdaMin)
    {
        var clipped = 0;
        foreach (var a in alphasCumprod)
            if (MathF.Log(MathF.Sqrt(a)) - MathF.Log(MathF.Sqrt(1f - a)) < lambdaMin) clipped++;
        return clipped;
    }
}
