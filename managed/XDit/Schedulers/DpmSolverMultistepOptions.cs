namespace XDit.Schedulers;

/// <summary>
/// The configuration of <see cref="DpmSolverMultistepScheduler"/>: the fields of diffusers'
/// <c>DPMSolverMultistepScheduler</c> that the engine implements, with diffusers' defaults (which are
/// PixArt's scheduler: the PixArt conversion scripts build it with no arguments). Always the
/// deterministic DPM-Solver++ (<c>algorithm_type="dpmsolver++"</c>) on the VP sigmas of the training
/// schedule.
/// </summary>
public sealed record DpmSolverMultistepOptions
{
    public int NumTrainTimesteps { get; init; } = 1000;
    public double BetaStart { get; init; } = 0.0001;
    public double BetaEnd { get; init; } = 0.02;
    public BetaSchedule BetaSchedule { get; init; } = BetaSchedule.Linear;

    /// <summary>Explicit betas (one per training timestep) instead of the schedule.</summary>
    public IReadOnlyList<double>? TrainedBetas { get; init; }

    /// <summary>1 (DPM-Solver++ 1, i.e. DDIM) or 2 (2M); third order is not implemented.</summary>
    public int SolverOrder { get; init; } = 2;

    public PredictionType PredictionType { get; init; } = PredictionType.Epsilon;
    public DpmSolverType SolverType { get; init; } = DpmSolverType.Midpoint;

    /// <summary>First order on the last step when there are fewer than 15 steps.</summary>
    public bool LowerOrderFinal { get; init; } = true;

    /// <summary>First order (Euler) on the last step whatever the step count.</summary>
    public bool EulerAtFinal { get; init; }

    public FinalSigmaType FinalSigmaType { get; init; } = FinalSigmaType.Zero;

    /// <summary>Timesteps whose λ = log(α/σ) lies below this are not used (−∞: none are dropped).</summary>
    public double LambdaMinClipped { get; init; } = double.NegativeInfinity;

    public TimestepSpacing TimestepSpacing { get; init; } = TimestepSpacing.Linspace;

    /// <summary>Added to the timesteps of <see cref="Schedulers.TimestepSpacing.Leading"/> spacing.</summary>
    public int StepsOffset { get; init; }

    /// <summary>Rescales the betas to zero terminal SNR; the last ᾱ is then set to 2⁻²⁴ so the first
    /// sigma stays finite.</summary>
    public bool RescaleBetasZeroSnr { get; init; }
}
