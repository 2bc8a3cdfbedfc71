using System.Text.Json;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// The Euler flow-matching scheduler (diffusers' <c>FlowMatchEulerDiscreteScheduler</c>) of SD3, Flux,
/// HunyuanVideo and Mochi: the model predicts a velocity v and a step is x' = x + (σ_(i+1) − σ_i)·v.
/// </summary>
/// <remarks>
/// <para>The sigmas come from <c>SetTimesteps</c>, in one of three ways, each as diffusers computes it
/// (float64 for the first, float32 for explicit sigmas), then rounded to float32:</para>
/// <list type="bullet">
/// <item>a step count with static shift (SD3): diffusers' constructor already shifts its 1000 training
/// sigmas, and <c>set_timesteps</c> spaces the n sigmas evenly between the SHIFTED extremes and then
/// shifts them again, s' = shift·s/(1 + (shift − 1)·s). This double shift is reproduced on purpose: the
/// last sigma is not the shift of 1/n;</item>
/// <item>a step count or explicit sigmas with dynamic shifting (Flux): s' = e^μ/(e^μ + 1/s − 1), with μ
/// from the image size (<see cref="FluxMu"/>); the Flux pipeline passes the sigmas linspace(1, 1/n, n);</item>
/// <item>explicit sigmas with static shift (HunyuanVideo passes linspace(1, 0, n + 1) without its last
/// element, Mochi a linear-quadratic schedule).</item>
/// </list>
/// <para>Timesteps are σ·1000 in float32 and a final σ of 0 is appended; with
/// <see cref="FlowMatchEulerOptions.InvertSigmas"/> (Mochi) the sigmas become 1 − σ, timesteps follow
/// them and the final σ is 1. The step is stateless, so it needs no slice bookkeeping: the step index
/// (passed explicitly) moves once per denoising step however many slices are stepped. The Karras,
/// exponential and beta sigma schedules are not implemented.</para>
/// </remarks>
public sealed class FlowMatchEulerScheduler : IScheduler
{
    const string Name = nameof(FlowMatchEulerScheduler);

    readonly double _sigmaMax;
    readonly double _sigmaMin;
    double[] _timesteps = [];
    double[] _sigmas = [];

    public FlowMatchEulerScheduler(FlowMatchEulerOptions? options = null)
    {
        Options = options ?? new FlowMatchEulerOptions();
        if (Options.NumTrainTimesteps < 1)
            throw new ArgumentOutOfRangeException(nameof(options), Options.NumTrainTimesteps, $"{Name}: num_train_timesteps must be at least 1");
        // The training sigmas k/T (k = T … 1) in float32, shifted unless the shift is dynamic; only their
        // extremes are used later.
        float train = Options.NumTrainTimesteps;
        float Shifted(float s) => Options.UseDynamicShifting ? s : StaticShift(s);
        _sigmaMax = Shifted(train / train);
        _sigmaMin = Shifted(1f / train);
    }

    /// <summary>A scheduler from the object of a diffusers <c>scheduler_config.json</c> (fields missing
    /// there take diffusers' defaults).</summary>
    /// <exception cref="NotSupportedException">The config asks for an option this engine does not implement.</exception>
    /// <exception cref="ArgumentException">A field has the wrong type or an unknown value.</exception>
    public static FlowMatchEulerScheduler FromConfig(JsonElement config)
    {
        var c = new SchedulerConfig(config, "FlowMatchEulerDiscreteScheduler");
        foreach (var option in new[] { "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "stochastic_sampling" })
            c.RejectIfTrue(option);
        c.Require("time_shift_type", ["exponential"], "linear");
        return new FlowMatchEulerScheduler(new FlowMatchEulerOptions
        {
            NumTrainTimesteps = c.Int("num_train_timesteps", 1000),
            Shift = c.Double("shift", 1.0),
            UseDynamicShifting = c.Bool("use_dynamic_shifting", false),
            BaseShift = c.Double("base_shift", 0.5),
            MaxShift = c.Double("max_shift", 1.15),
            BaseImageSeqLen = c.Int("base_image_seq_len", 256),
            MaxImageSeqLen = c.Int("max_image_seq_len", 4096),
            InvertSigmas = c.Bool("invert_sigmas", false),
            ShiftTerminal = c.NullableDouble("shift_terminal"),
        });
    }

    /// <summary>
    /// μ for dynamic shifting, diffusers' <c>calculate_shift</c> as the Flux pipeline calls it: linear in
    /// the number of image tokens, <paramref name="baseShift"/> at <paramref name="baseSeqLen"/> tokens and
    /// <paramref name="maxShift"/> at <paramref name="maxSeqLen"/> (and extrapolated beyond). Flux's image
    /// tokens are (height/16)·(width/16) for an image of height × width pixels.
    /// </summary>
    public static double FluxMu(int imageSeqLen, int baseSeqLen, int maxSeqLen, double baseShift, double maxShift)
    {
        if (maxSeqLen == baseSeqLen)
            throw new ArgumentException($"FluxMu: the base and max sequence lengths are both {baseSeqLen}; μ needs two different lengths");
        var slope = (maxShift - baseShift) / (maxSeqLen - baseSeqLen);
        var intercept = baseShift - slope * baseSeqLen;
        return imageSeqLen * slope + intercept;
    }

    /// <summary><see cref="FluxMu"/> with this scheduler's base and max lengths and shifts.</summary>
    public double MuFor(int imageSeqLen) =>
        FluxMu(imageSeqLen, Options.BaseImageSeqLen, Options.MaxImageSeqLen, Options.BaseShift, Options.MaxShift);

    public FlowMatchEulerOptions Options { get; }

    /// <summary>σ·1000 of each step, float32 values.</summary>
    public IReadOnlyList<double> Timesteps => _timesteps;

    /// <summary>The float32 sigma of each step and the final one (one more than <see cref="Timesteps"/>).</summary>
    public IReadOnlyList<double> Sigmas => _sigmas;

    public double InitNoiseSigma => 1.0;

    /// <summary><paramref name="steps"/> sigmas evenly spaced between the extremes of the (shifted)
    /// training sigmas, then shifted. Dynamic shifting needs μ: use the overload that takes it.</summary>
    public void SetTimesteps(int steps)
    {
        if (Options.UseDynamicShifting)
            throw new InvalidOperationException(
                $"{Name}.SetTimesteps: use_dynamic_shifting needs mu; call SetTimesteps(steps, mu) or SetTimesteps(sigmas, mu)");
        SetTimesteps(steps, double.NaN);
    }

    /// <summary>As <see cref="SetTimesteps(int)"/>, shifting dynamically by <paramref name="mu"/> when the
    /// config says so (otherwise μ is ignored, as diffusers ignores it).</summary>
    public void SetTimesteps(int steps, double mu)
    {
        StepArguments.CheckStepCount(Name, steps);
        double train = Options.NumTrainTimesteps;
        var sigmas = NumPyRanges.Linspace(_sigmaMax * train, _sigmaMin * train, steps).Select(t => t / train).ToArray();
        for (int i = 0; i < sigmas.Length; i++)
            sigmas[i] = Options.UseDynamicShifting ? DynamicShift(sigmas[i], mu) : Options.Shift * sigmas[i] / (1 + (Options.Shift - 1) * sigmas[i]);
        if (IsTerminalShifted)
        {
            var scale = (1 - sigmas[^1]) / (1 - Options.ShiftTerminal!.Value);
            for (int i = 0; i < sigmas.Length; i++) sigmas[i] = 1 - (1 - sigmas[i]) / scale;
        }
        Finish(Array.ConvertAll(sigmas, s => (float)s));
    }

    /// <summary>Explicit sigmas (rounded to float32 first, as diffusers does), one per step, shifted
    /// dynamically by <paramref name="mu"/> (required when the config says so) or statically by the
    /// config's shift.</summary>
    public void SetTimesteps(IReadOnlyList<double> sigmas, double? mu = null)
    {
        ArgumentNullException.ThrowIfNull(sigmas);
        StepArguments.CheckStepCount(Name, sigmas.Count);
        if (Options.UseDynamicShifting && mu is null)
            throw new ArgumentException($"{Name}.SetTimesteps: use_dynamic_shifting needs mu", nameof(mu));
        var shifted = new float[sigmas.Count];
        for (int i = 0; i < shifted.Length; i++)
            shifted[i] = Options.UseDynamicShifting ? DynamicShift((float)sigmas[i], (float)Math.Exp(mu!.Value)) : StaticShift((float)sigmas[i]);
        if (IsTerminalShifted)
        {
            // NumPy: a float32 element over a Python float is a float64 scalar, which the array division
            // then casts back to float32.
            var scale = (float)((1f - shifted[^1]) / (1 - Options.ShiftTerminal!.Value));
            for (int i = 0; i < shifted.Length; i++) shifted[i] = 1f - (1f - shifted[i]) / scale;
        }
        Finish(shifted);
    }

    public Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, int slice = 0)
    {
        StepArguments.Check(Name, _timesteps.Length, modelOutput, stepIndex, sample);
        var dt = (float)_sigmas[stepIndex + 1] - (float)_sigmas[stepIndex]; // float32, as torch subtracts them
        using var scope = new TensorScope();
        var update = Elementwise.Affine(LatentMath.InFloat32(modelOutput), dt);
        Elementwise.Add(LatentMath.InFloat32(sample), update, update);
        return LatentMath.Finish(update, sample);
    }

    /// <summary>Flow matching keeps no history.</summary>
    public void Reset()
    {
    }

    public void Dispose()
    {
    }

    bool IsTerminalShifted => Options.ShiftTerminal is { } terminal && terminal != 0; // Python: `if shift_terminal:`

    /// <summary>The static shift in float32 arithmetic (torch in the constructor, NumPy float32 arrays
    /// for explicit sigmas).</summary>
    float StaticShift(float s) => (float)Options.Shift * s / (1f + (float)(Options.Shift - 1) * s);

    static double DynamicShift(double s, double mu)
    {
        var e = Math.Exp(mu);
        return e / (e + (1 / s - 1));
    }

    static float DynamicShift(float s, float expMu) => expMu / (expMu + (1f / s - 1f));

    /// <summary>Timesteps σ·T and the final sigma, from the float32 sigmas of the steps.</summary>
    void Finish(float[] sigmas)
    {
        float train = Options.NumTrainTimesteps;
        if (Options.InvertSigmas)
            for (int i = 0; i < sigmas.Length; i++) sigmas[i] = 1f - sigmas[i];
        _timesteps = sigmas.Select(s => (double)(s * train)).ToArray();
        _sigmas = [.. sigmas.Select(s => (double)s), Options.InvertSigmas ? 1.0 : 0.0];
    }
}
