namespace XDit.Schedulers;

/// <summary>What the denoising model predicts (diffusers' <c>prediction_type</c>); a scheduler turns
/// it into the clean-sample estimate x̂₀ it extrapolates from.</summary>
public enum PredictionType
{
    /// <summary>The added noise ε (<c>"epsilon"</c>): PixArt, most latent-diffusion models.</summary>
    Epsilon,

    /// <summary>The velocity v = √ᾱ·ε − √(1−ᾱ)·x₀ (<c>"v_prediction"</c>): HunyuanDiT, CogVideoX.</summary>
    VPrediction,

    /// <summary>The clean sample x₀ itself (<c>"sample"</c>).</summary>
    Sample,
}
