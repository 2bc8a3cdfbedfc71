namespace XDit.Schedulers;

/// <summary>The training noise schedule β₁ … β_T of a discrete-time (DDPM-family) scheduler
/// (diffusers' <c>beta_schedule</c>).</summary>
public enum BetaSchedule
{
    /// <summary>β evenly spaced from <c>beta_start</c> to <c>beta_end</c> (<c>"linear"</c>).</summary>
    Linear,

    /// <summary>√β evenly spaced, then squared (<c>"scaled_linear"</c>): the latent-diffusion schedule.</summary>
    ScaledLinear,

    /// <summary>The cosine schedule of improved DDPM, β capped at 0.999 (<c>"squaredcos_cap_v2"</c>).</summary>
    SquaredCosCapV2,
}
