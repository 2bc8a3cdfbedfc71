using XDit.Tensors;

namespace XDit.Tests;

/// <summary>f32 ↔ f16 ↔ bf16 conversions against the IEEE 754 definition, computed independently here
/// from exact values: widening is exact; narrowing picks the nearest representable value, ties to the
/// even bit pattern, overflowing to infinity as if the exponent range were unbounded.</summary>
[TestFixture]
public class CastTests
{
    /// <summary>The exact value of a half bit pattern (the +inf pattern counts as 2^16 for rounding).</summary>
    static double HalfValue(int bits)
    {
        var sign = (bits & 0x8000) != 0 ? -1.0 : 1.0;
        var exponent = (bits >> 10) & 0x1f;
        var mantissa = bits & 0x3ff;
        if (exponent == 0) return sign * mantissa * Math.Pow(2, -24);
        if (exponent == 31) return mantissa == 0 ? sign * 65536.0 : double.NaN;
        return sign * (1 + mantissa / 1024.0) * Math.Pow(2, exponent - 15);
    }

    static double Bf16Value(int bits) =>
        bits == 0x7f80 ? Math.Pow(2, 128) : BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Nearest-even choice between two neighbouring bit patterns lo &lt;= |x| &lt;= hi.</summary>
    static int Nearest(double x, int lo, double loValue, int hi, double hiValue)
    {
        var dl = x - loValue;
        var dh = hiValue - x;
        if (dl < dh) return lo;
        if (dh < dl) return hi;
        return (lo & 1) == 0 ? lo : hi;
    }

    static ushort ReferenceF16(float f)
    {
        if (float.IsNaN(f)) return 0x7e00;
        int sign = f < 0 || (f == 0 && float.IsNegative(f)) ? 0x8000 : 0;
        double x = Math.Abs((double)f);
        if (x >= 65536.0) return (ushort)(sign | 0x7c00);
        int lo = 0, hi = 0x7c00; // binary search over monotonic non-negative patterns
        while (hi - lo > 1)
        {
            int mid = (lo + hi) / 2;
            if (HalfValue(mid) <= x) lo = mid; else hi = mid;
        }
        return (ushort)(sign | Nearest(x, lo, HalfValue(lo), hi, HalfValue(hi)));
    }

    static ushort ReferenceBf16(float f)
    {
        if (float.IsNaN(f)) return 0x7fc0;
        uint bits = BitConverter.SingleToUInt32Bits(f);
        int sign = (int)(bits >> 16) & 0x8000;
        int lo = (int)((bits & 0x7fffffff) >> 16);
        if (lo >= 0x7f80) return (ushort)(sign | 0x7f80);
        double x = Math.Abs((double)f);
        return (ushort)(sign | Nearest(x, lo, Bf16Value(lo), lo + 1, Bf16Value(lo + 1)));
    }

    /// <summary>Random bit patterns plus every half value, every midpoint between neighbours (ties) and
    /// the floats right next to those midpoints, subnormals, overflow edges, zeros, infinities, NaN.</summary>
    static float[] Inputs()
    {
        var values = new List<float>();
        var random = new Random(2024);
        for (int i = 0; i < 200_000; i++) values.Add(BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)));
        for (int i = 0; i < 200_000; i++) values.Add((float)((random.NextDouble() * 2 - 1) * Math.Pow(2, random.Next(-30, 20))));
        for (int bits = 0; bits < 0x7c00; bits++)
        {
            var mid = (float)((HalfValue(bits) + HalfValue(bits + 1)) / 2);
            values.Add((float)HalfValue(bits));
            values.Add(mid);
            values.Add(MathF.BitIncrement(mid));
            values.Add(MathF.BitDecrement(mid));
        }
        for (int bits = 0; bits < 0x7f80; bits += 7)
        {
            var mid = BitConverter.UInt32BitsToSingle(((uint)bits << 16) | 0x8000);
            values.AddRange(new[] { mid, MathF.BitIncrement(mid), MathF.BitDecrement(mid) });
        }
        values.AddRange(new[] { 0f, -0f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, 65504f, 65519.998f,
            65520f, 65536f, float.MaxValue, -float.MaxValue, float.Epsilon, 5.96e-8f, 2.98e-8f, 2.9802322e-8f });
        var all = values.ToList();
        all.AddRange(values.Select(v => -v));
        return all.ToArray();
    }

    [Test]
    public void F32ToF16IsRoundToNearestEven()
    {
        using var context = Contexts.Cpu();
        CheckNarrowing(context, DType.F16, ReferenceF16);
    }

    [Test]
    public void F32ToBf16IsRoundToNearestEven()
    {
        using var context = Contexts.Cpu();
        CheckNarrowing(context, DType.BF16, ReferenceBf16);
    }

    internal static void CheckNarrowing(DeviceContext context, DType dtype, Func<float, ushort> reference)
    {
        var inputs = Inputs();
        using var scope = new TensorScope();
        var source = Tensor.FromArray(context, inputs, inputs.Length);
        var narrow = source.To(dtype);
        var bits = dtype == DType.F16
            ? narrow.ToArray<Half>().Select(BitConverter.HalfToUInt16Bits).ToArray()
            : narrow.ToArray<BFloat16>().Select(b => b.Bits).ToArray();
        int failures = 0;
        var report = new List<string>();
        for (int i = 0; i < inputs.Length; i++)
        {
            var expected = reference(inputs[i]);
            var ok = float.IsNaN(inputs[i]) ? IsNaN(bits[i], dtype) : bits[i] == expected;
            if (ok) continue;
            if (failures++ < 5)
                report.Add($"{inputs[i]:R} (0x{BitConverter.SingleToUInt32Bits(inputs[i]):x8}) -> 0x{bits[i]:x4}, expected 0x{expected:x4}");
        }
        Assert.That(failures, Is.Zero, string.Join("\n", report));
    }

    static bool IsNaN(ushort bits, DType dtype) =>
        dtype == DType.F16 ? (bits & 0x7c00) == 0x7c00 && (bits & 0x3ff) != 0 : (bits & 0x7f80) == 0x7f80 && (bits & 0x7f) != 0;

    [Test]
    public void F16AndBf16WidenExactly()
    {
        using var context = Contexts.Cpu();
        CheckWidening(context);
    }

    internal static void CheckWidening(DeviceContext context)
    {
        var patterns = Enumerable.Range(0, 65536).Select(i => (ushort)i).ToArray();
        using var scope = new TensorScope();
        var halves = Tensor.FromArray(context, patterns.Select(BitConverter.UInt16BitsToHalf).ToArray(), 65536).To(DType.F32).ToArray<float>();
        var bf16s = Tensor.FromArray(context, patterns.Select(b => new BFloat16(b)).ToArray(), 65536).To(DType.F32).ToArray<float>();
        for (int i = 0; i < 65536; i++)
        {
            var h = HalfValue(i);
            if ((i & 0x7fff) == 0x7c00) h = Math.CopySign(double.PositiveInfinity, h);
            if (double.IsNaN(h)) Assert.That(float.IsNaN(halves[i]), $"half 0x{i:x4}");
            else Assert.That((double)halves[i], Is.EqualTo(h), $"half 0x{i:x4}");
            Assert.That(BitConverter.SingleToUInt32Bits(bf16s[i]) & 0xffff, Is.Zero);
            var exact = BitConverter.UInt32BitsToSingle((uint)i << 16);
            if (float.IsNaN(exact)) Assert.That(float.IsNaN(bf16s[i]), $"bf16 0x{i:x4}");
            else Assert.That(BitConverter.SingleToUInt32Bits(bf16s[i]), Is.EqualTo(BitConverter.SingleToUInt32Bits(exact)), $"bf16 0x{i:x4}");
        }
    }

    [Test]
    public void ManagedBFloat16MatchesTheNativeConversion()
    {
        var inputs = Inputs();
        foreach (var f in inputs)
            if (!float.IsNaN(f))
                Assert.That(((BFloat16)f).Bits, Is.EqualTo(ReferenceBf16(f)), $"{f:R}");
    }

    [Test]
    public void IntegerAndBoolCopies()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var longs = Tensor.FromArray(context, new long[] { -3, 0, 5, long.MaxValue }, 4);
        Assert.That(longs.To(DType.Bool).ToArray<bool>(), Is.EqualTo(new[] { true, false, true, true }));
        Assert.That(longs.Narrow(0, 0, 3).To(DType.I32).ToArray<int>(), Is.EqualTo(new[] { -3, 0, 5 }));
        Assert.That(longs.Narrow(0, 0, 3).To(DType.F32).ToArray<float>(), Is.EqualTo(new[] { -3f, 0f, 5f }));
        Assert.That(longs.To(DType.I64).ToArray<long>(), Is.EqualTo(new[] { -3L, 0, 5, long.MaxValue }));
        var floats = Tensor.FromArray(context, new[] { 1.5f }, 1);
        var error = Assert.Throws<XDitException>(() => floats.To(DType.I32).Dispose())!;
        Assert.That(error.Message, Does.Contain("float to integer"));
    }
}
