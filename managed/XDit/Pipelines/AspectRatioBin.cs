namespace XDit.Pipelines;

/// <summary>One entry of PixArt's aspect-ratio tables: the ratio key exactly as diffusers spells it
/// (height / width, rounded to two decimals) and the image size trained for that ratio.</summary>
/// <remarks>The key is kept as text because classification compares against the key parsed as a
/// double, not against <see cref="Height"/> / <see cref="Width"/> (for "0.28", 512 / 1856 ≈ 0.2759).</remarks>
public readonly record struct AspectRatioBin(string Ratio, int Height, int Width)
{
    /// <summary>The key as Python's <c>float(ratio)</c> reads it.</summary>
    public double RatioValue => double.Parse(Ratio, System.Globalization.CultureInfo.InvariantCulture);

    public override string ToString() => $"{Height}x{Width} (ratio {Ratio})";
}
