namespace XDit.Schedulers;

/// <summary>How a discrete-time scheduler picks its inference timesteps out of the training timesteps
/// (diffusers' <c>timestep_spacing</c>, Table 2 of "Common Diffusion Noise Schedules and Sample Steps
/// are Flawed"). Each scheduler documents its exact formula: they differ in details (DPM-Solver spaces
/// n + 1 points and drops the last one, DDIM spaces n).</summary>
public enum TimestepSpacing
{
    /// <summary>Evenly spaced over [0, T − 1] and rounded (<c>"linspace"</c>).</summary>
    Linspace,

    /// <summary>Multiples of an integer stride from 0, plus <c>steps_offset</c> (<c>"leading"</c>).</summary>
    Leading,

    /// <summary>A float stride down from T, rounded, minus one, so the first timestep is T − 1 (<c>"trailing"</c>).</summary>
    Trailing,
}
