namespace XDit.Schedulers;

/// <summary>
/// The configuration of <see cref="DdpmScheduler"/>: the fields of diffusers' <c>DDPMScheduler</c> that
/// the engine implements, with diffusers' defaults (note that DDPM clips x̂₀ and uses leading spacing
/// unless told otherwise).
/// </summary>
public sealed record DdpmOptions
{
    public int NumTrainTimesteps { get; init; } = 1000;
    public double BetaStart { get; init; } = 0.0001;
    public double BetaEnd { get; init; } = 0.02;
    public BetaSchedule BetaSchedule { get; init; } = BetaSchedule.Linear;

    /// <summary>Explicit betas (one per training timestep) instead of the schedule.</summary>
    public IReadOnlyList<double>? TrainedBetas { get; init; }

    public DdpmVarianceType VarianceType { get; init; } = DdpmVarianceType.FixedSmall;

    /// <summary>Clamps x̂₀ to ±<see cref="ClipSampleRange"/> (pixel-space models; latent models turn it off).</summary>
    public bool ClipSample { get; init; } = true;

    public double ClipSampleRange { get; init; } = 1.0;
    public PredictionType PredictionType { get; init; } = PredictionType.Epsilon;
    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Leading;

    /// <summary>Added to the timesteps of <see cref="Schedulers.TimestepSpacing.Leading"/> spacing.</summary>
    public int StepsOffset { get; init; }

    /// <summary>Rescales the betas to zero terminal SNR (ᾱ of the last training timestep becomes 0).</summary>
    public bool RescaleBetasZeroSnr { get; init; }
}
