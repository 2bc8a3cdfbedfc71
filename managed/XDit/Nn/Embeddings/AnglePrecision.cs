namespace XDit.Nn.Embeddings;

/// <summary>The floating-point precision in which diffusers computes a rotary table's frequencies and
/// angles (its <c>freqs_dtype</c>). It is part of the model's numerics: at positions in the thousands the
/// two choices differ by about 1e-4 in the sines, far above the float32 rounding of the tables, so a
/// port follows the model.</summary>
public enum AnglePrecision
{
    /// <summary>diffusers' default (HunyuanVideo, CogVideoX, HunyuanDiT): every stage rounded to float32.</summary>
    Float32,

    /// <summary>Flux (<c>FluxPosEmbed</c> off Apple MPS): frequencies, angles, sines and cosines in float64,
    /// the tables then rounded to float32.</summary>
    Float64,
}
