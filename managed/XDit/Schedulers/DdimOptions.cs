namespace XDit.Schedulers;

/// <summary>
/// The configuration of <see cref="DdimScheduler"/>: the fields of diffusers' <c>DDIMScheduler</c>
/// that the engine implements, with diffusers' defaults (note that DDIM clips x̂₀ and uses leading
/// spacing unless told otherwise). CogVideoX's DDIM and DPM-Solver (<see cref="CogVideoXDpmScheduler"/>)
/// take the same fields plus <see cref="SnrShiftScale"/>.
/// </summary>
public sealed record DdimOptions
{
    public int NumTrainTimesteps { get; init; } = 1000;
    public double BetaStart { get; init; } = 0.0001;
    public double BetaEnd { get; init; } = 0.02;
    public BetaSchedule BetaSchedule { get; init; } = BetaSchedule.Linear;

    /// <summary>Explicit betas (one per training timestep) instead of the schedule.</summary>
    public IReadOnlyList<double>? TrainedBetas { get; init; }

    /// <summary>Clamps x̂₀ to ±<see cref="ClipSampleRange"/> (pixel-space models; latent models turn it off).</summary>
    public bool ClipSample { get; init; } = true;

    public double ClipSampleRange { get; init; } = 1.0;

    /// <summary>The last step lands on ᾱ = 1 (true) or on ᾱ of timestep 0 (false).</summary>
    public bool SetAlphaToOne { get; init; } = true;

    /// <summary>Added to the timesteps of <see cref="Schedulers.TimestepSpacing.Leading"/> spacing.</summary>
    public int StepsOffset { get; init; }

    public PredictionType PredictionType { get; init; } = PredictionType.Epsilon;
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <summary>Rescales the betas to zero terminal SNR (ᾱ of the last training timestep becomes 0).</summary>
    public bool RescaleBetasZeroSnr { get; init; }

    /// <summary>CogVideoX's SNR shift s (its <c>CogVideoXDDIMScheduler</c>, whose step is DDIM's):
    /// when set, ᾱ is built as that class builds it, in float64 for the scaled-linear schedule, divided
    /// by s + (1 − s)·ᾱ, and <see cref="RescaleBetasZeroSnr"/> rescales that ᾱ. Null: plain DDIM.</summary>
    public double? SnrShiftScale { get; init; }

    /// <summary>The ᾱ table these options describe.</summary>
    internal double[] AlphasCumprod(string scheduler) => SnrShiftScale is { } snrShift
        ? NoiseSchedule.CogVideoXAlphasCumprod(scheduler, NumTrainTimesteps, BetaSchedule, BetaStart, BetaEnd, TrainedBetas, snrShift,
            RescaleBetasZeroSnr)
        : Array.ConvertAll(NoiseSchedule.AlphasCumprod(scheduler, NumTrainTimesteps, BetaSchedule, BetaStart, BetaEnd, TrainedBetas,
            RescaleBetasZeroSnr), a => (double)a);

    /// <summary>The options of a CogVideoX DDIM or DPM-Solver config (diffusers gives both classes the
    /// same arguments and defaults: scaled-linear 0.00085 to 0.012, SNR shift 3). Neither class clips,
    /// whatever <c>clip_sample</c> says.</summary>
    internal static DdimOptions ReadCogVideoX(SchedulerConfig c) => new()
    {
        NumTrainTimesteps = c.Int("num_train_timesteps", 1000),
        BetaStart = c.Double("beta_start", 0.00085),
        BetaEnd = c.Double("beta_end", 0.012),
        BetaSchedule = c.BetaSchedule(BetaSchedule.ScaledLinear),
        TrainedBetas = c.DoubleArray("trained_betas"),
        ClipSample = false,
        SetAlphaToOne = c.Bool("set_alpha_to_one", true),
        StepsOffset = c.Int("steps_offset", 0),
        PredictionType = c.PredictionType(PredictionType.Epsilon),
        TimestepSpacing = c.TimestepSpacing(TimestepSpacing.Leading),
        RescaleBetasZeroSnr = c.Bool("rescale_betas_zero_snr", false),
        SnrShiftScale = c.Double("snr_shift_scale", 3.0),
    };
}
