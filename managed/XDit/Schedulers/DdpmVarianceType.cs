namespace XDit.Schedulers;

/// <summary>The variance of the noise a DDPM step adds (diffusers' <c>variance_type</c>), with
/// a = ᾱ_t, a' = ᾱ_t' and β = 1 − a/a'.</summary>
public enum DdpmVarianceType
{
    /// <summary>The posterior variance β·(1 − a')/(1 − a), at least 1e-20 (<c>"fixed_small"</c>; its
    /// <c>"fixed_small_log"</c> form gives the same step).</summary>
    FixedSmall,

    /// <summary>β itself (<c>"fixed_large"</c>).</summary>
    FixedLarge,
}
