namespace XDit.Schedulers;

/// <summary>The second-order update of DPM-Solver++(2M) (diffusers' <c>solver_type</c>): both use the
/// same history and differ only in how the first difference of x̂₀ is weighted.</summary>
public enum DpmSolverType
{
    /// <summary><c>"midpoint"</c> (diffusers' default, and PixArt's).</summary>
    Midpoint,

    /// <summary><c>"heun"</c>.</summary>
    Heun,
}
