namespace XDit.Schedulers;

/// <summary>The noise level DPM-Solver ends at (diffusers' <c>final_sigmas_type</c>).</summary>
public enum FinalSigmaType
{
    /// <summary>σ = 0 (<c>"zero"</c>): the last step lands on x̂₀ exactly and is always first order.</summary>
    Zero,

    /// <summary>The smallest training σ, that of timestep 0 (<c>"sigma_min"</c>).</summary>
    SigmaMin,
}
