namespace XDit;

/// <summary>The bfloat16 storage type (the top half of an IEEE binary32) with exact conversions:
/// widening is exact, narrowing rounds to nearest, ties to even, as the native library does.</summary>
public readonly struct BFloat16 : IEquatable<BFloat16>
{
    public BFloat16(ushort bits) => Bits = bits;

    public ushort Bits { get; }

    public static explicit operator BFloat16(float value)
    {
        uint u = BitConverter.SingleToUInt32Bits(value);
        if ((u & 0x7fffffffu) > 0x7f800000u) return new BFloat16((ushort)((u >> 16) | 0x40u)); // quiet NaN
        u += 0x7fffu + ((u >> 16) & 1u);
        return new BFloat16((ushort)(u >> 16));
    }

    public static implicit operator float(BFloat16 value) => BitConverter.UInt32BitsToSingle((uint)value.Bits << 16);

    public bool Equals(BFloat16 other) => Bits == other.Bits;
    public override bool Equals(object? obj) => obj is BFloat16 other && Equals(other);
    public override int GetHashCode() => Bits;
    public override string ToString() => ((float)this).ToString(System.Globalization.CultureInfo.InvariantCulture);
}
