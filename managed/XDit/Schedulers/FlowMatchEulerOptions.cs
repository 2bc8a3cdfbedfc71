namespace XDit.Schedulers;

/// <summary>
/// The configuration of <see cref="FlowMatchEulerScheduler"/>: the fields of diffusers'
/// <c>FlowMatchEulerDiscreteScheduler</c> that the engine implements, with diffusers' defaults.
/// </summary>
public sealed record FlowMatchEulerOptions
{
    public int NumTrainTimesteps { get; init; } = 1000;

    /// <summary>The static shift s' = shift·s/(1 + (shift − 1)·s) (SD3: 3, HunyuanVideo: 7); unused
    /// with dynamic shifting.</summary>
    public double Shift { get; init; } = 1.0;

    /// <summary>Shift by a resolution-dependent μ instead (Flux): s' = e^μ/(e^μ + 1/s − 1), with μ
    /// passed to SetTimesteps (see <see cref="FlowMatchEulerScheduler.MuFor"/>).</summary>
    public bool UseDynamicShifting { get; init; }

    /// <summary>μ at <see cref="BaseImageSeqLen"/> image tokens.</summary>
    public double BaseShift { get; init; } = 0.5;

    /// <summary>μ at <see cref="MaxImageSeqLen"/> image tokens.</summary>
    public double MaxShift { get; init; } = 1.15;

    public int BaseImageSeqLen { get; init; } = 256;
    public int MaxImageSeqLen { get; init; } = 4096;

    /// <summary>Runs the schedule backwards, σ ↦ 1 − σ, ending at σ = 1 (Mochi).</summary>
    public bool InvertSigmas { get; init; }

    /// <summary>Stretches the shifted sigmas so the last one equals this value (LTX-Video); null: off.</summary>
    public double? ShiftTerminal { get; init; }
}
