using XDit.Tensors;

namespace XDit.Rng;

/// <summary>
/// PyTorch's CPU generator as <c>torch.Generator('cpu').manual_seed(seed)</c> makes it, drawing
/// <c>torch.randn(shape, generator=g, dtype=torch.float32)</c> bit for bit (PyTorch 1.13 on an x86-64 CPU
/// with AVX2, where PyTorch dispatches to its AVX2 kernel), successive draws included. A seed thus gives
/// the same starting latent on every backend and rank count as a diffusers pipeline handed a CPU generator.
/// </summary>
/// <remarks>
/// <para>What one <c>randn</c> call does, established against the golden draws (<c>golden/rng</c>, every
/// element bit-identical):</para>
/// <list type="bullet">
/// <item>The engine is MT19937 seeded with the low 32 bits of the seed (<see cref="MersenneTwister19937"/>).</item>
/// <item><b>16 elements or more</b> (torch's <c>normal_fill_AVX2</c>): every element first gets a uniform
/// float <c>(random() &amp; 0xFFFFFF) · 2⁻²⁴</c>, in order. Each block of 16 then becomes normals by
/// Box–Muller on the pairs (j, j+8): u1 = 1 − x[j], radius = √(−2 ln u1), θ = float(2π) · x[j+8],
/// x[j] = radius · cos θ, x[j+8] = radius · sin θ. When the count is not a multiple of 16, 16 fresh uniforms
/// overwrite the LAST 16 elements (the tail and part of the last full block) and are transformed again.</item>
/// <item>ln, sin and cos are not the C library's: they are the Cephes polynomials of <c>avx_mathfun.h</c>
/// (<c>log256_ps</c>, <c>sincos256_ps</c>), in float, with the multiply-adds that GCC contracted into FMA
/// instructions when it compiled them (polynomial steps, Cody–Waite reduction, the final corrections).
/// Measured on the golden draws: correctly rounded <c>logf/sinf/cosf</c> differ in ~40% of the elements,
/// the Cephes code without FMA in ~1%, other plausible contractions (<c>e·q1</c> fused instead of <c>y·z</c>
/// in ln, or <c>z·½</c> instead of <c>y·z</c> in the cosine) in 1 to 10 per 10⁴, by one or two ulps.
/// Only the contractions below reproduce every golden element.</item>
/// <item><b>Fewer than 16 elements</b> (torch's <c>normal_distribution&lt;double&gt;</c>): each element
/// takes two double uniforms <c>(random64() &amp; (2⁵³−1)) · 2⁻⁵³</c> u1, u2 and returns
/// √(−2 ln(1 − u2)) · cos(2π u1) rounded to float, keeping the sine partner in the generator for the
/// next element, even one of a later small draw. Here ln/sin/cos are the C library's in double, which
/// .NET's <see cref="Math"/> calls too (1 − u2 is exact, so the log1p(−u2) of later PyTorch versions only
/// differs where the C library rounds the two differently). That the large path neither uses nor clears
/// the cached sample is PyTorch's source; the golden draws do not exercise it.</item>
/// </list>
/// <para>A PyTorch build without AVX2 uses <c>std::log/cos/sin</c> in float on the large path and gives
/// other bits; that variant is not reproduced. A generator is not thread-safe: one draw at a time.</para>
/// </remarks>
public sealed class TorchGenerator
{
    const int BlockSize = 16;
    const int HalfBlock = BlockSize / 2;

    readonly MersenneTwister19937 _engine;
    double? _cachedNormal;

    public TorchGenerator(ulong seed)
    {
        Seed = seed;
        _engine = new MersenneTwister19937(seed);
    }

    /// <summary>The seed as given (torch's <c>initial_seed()</c>); only its low 32 bits seed the engine.</summary>
    public ulong Seed { get; }

    /// <summary>A new row-major array of standard normals for <paramref name="shape"/>, as
    /// <c>torch.randn(shape, generator=this)</c> draws them.</summary>
    public float[] Randn(params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        Shapes.Validate(shape);
        var count = Shapes.Product(shape);
        if (count > Array.MaxLength)
            throw new ArgumentException($"randn {Shapes.ToString(shape)}: {count} elements do not fit one host array", nameof(shape));
        var values = new float[count];
        Randn(values);
        return values;
    }

    /// <summary>Fills <paramref name="destination"/> as one <c>torch.randn</c> call of that many
    /// elements would (the shape does not matter, only the count).</summary>
    public void Randn(Span<float> destination)
    {
        if (destination.Length < BlockSize)
        {
            for (int i = 0; i < destination.Length; i++) destination[i] = (float)NextDoubleNormal();
            return;
        }
        FillUniform(destination);
        for (int i = 0; i + BlockSize <= destination.Length; i += BlockSize)
            BoxMullerBlock(destination.Slice(i, BlockSize));
        if (destination.Length % BlockSize != 0)
        {
            var last = destination[^BlockSize..];
            FillUniform(last);
            BoxMullerBlock(last);
        }
    }

    // ---- fewer than 16 elements: at::normal_distribution<double> ------------------------------------

    double NextDoubleNormal()
    {
        if (_cachedNormal is double cached)
        {
            _cachedNormal = null;
            return cached;
        }
        var u1 = NextDoubleUniform();
        var u2 = NextDoubleUniform();
        var radius = Math.Sqrt(-2.0 * Math.Log(1.0 - u2));
        var theta = 2.0 * Math.PI * u1;
        _cachedNormal = radius * Math.Sin(theta);
        return radius * Math.Cos(theta);
    }

    double NextDoubleUniform() => (_engine.NextUInt64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    // ---- 16 elements or more: normal_fill_AVX2 ------------------------------------------------------

    void FillUniform(Span<float> destination)
    {
        for (int i = 0; i < destination.Length; i++)
            destination[i] = (_engine.NextUInt32() & 0xFFFFFF) * (1f / (1 << 24));
    }

    /// <summary>normal_fill_16_AVX2 on one block, lane by lane. Its final <c>fmadd(n, std, mean)</c> with
    /// std 1 and mean 0 is kept as an FMA: it turns −0 into +0.</summary>
    static void BoxMullerBlock(Span<float> block)
    {
        for (int j = 0; j < HalfBlock; j++)
        {
            var radius = MathF.Sqrt(-2f * CephesLog(1f - block[j]));
            var theta = (float)(2.0 * Math.PI) * block[j + HalfBlock];
            CephesSinCos(theta, out var sin, out var cos);
            block[j] = MathF.FusedMultiplyAdd(radius * cos, 1f, 0f);
            block[j + HalfBlock] = MathF.FusedMultiplyAdd(radius * sin, 1f, 0f);
        }
    }

    /// <summary>log256_ps for one lane. Its argument is 1 − u with u in [0, 1 − 2⁻²⁴], so in
    /// [2⁻²⁴, 1]: never zero, negative or subnormal, and the library's guards for those are left out.</summary>
    static float CephesLog(float x)
    {
        var bits = BitConverter.SingleToInt32Bits(x);
        var e = (float)((bits >>> 23) - 0x7f) + 1f;
        // The mantissa as a value in [0.5, 1), then shifted to [√½ − 1, √2 − 1) around 0.
        var m = BitConverter.Int32BitsToSingle((bits & ~0x7f800000) | 0x3f000000);
        var belowSqrtHalf = m < (float)0.707106781186547524;
        var tmp = belowSqrtHalf ? m : 0f;
        m -= 1f;
        e -= belowSqrtHalf ? 1f : 0f;
        m += tmp;

        var z = m * m;
        var y = (float)7.0376836292E-2;
        y = MathF.FusedMultiplyAdd(y, m, (float)-1.1514610310E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)1.1676998740E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)-1.2420140846E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)1.4249322787E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)-1.6668057665E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)2.0000714765E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)-2.4999993993E-1);
        y = MathF.FusedMultiplyAdd(y, m, (float)3.3333331174E-1);
        y *= m;
        y = MathF.FusedMultiplyAdd(y, z, e * (float)-2.12194440e-4);
        y = MathF.FusedMultiplyAdd(-z, 0.5f, y);
        return MathF.FusedMultiplyAdd(e, 0.693359375f, m + y);
    }

    /// <summary>sincos256_ps for one lane with x ≥ 0 (θ = 2π·u is never negative): reduction by a
    /// multiple j of π/4 in three Cody–Waite steps, then the cosine or sine polynomial as j selects.</summary>
    static void CephesSinCos(float x, out float sin, out float cos)
    {
        var j = (int)(x * (float)1.27323954473516);
        j = (j + 1) & ~1;
        float y = j;
        x = MathF.FusedMultiplyAdd(y, -0.78515625f, x);
        x = MathF.FusedMultiplyAdd(y, (float)-2.4187564849853515625e-4, x);
        x = MathF.FusedMultiplyAdd(y, (float)-3.77489497744594108e-8, x);

        var z = x * x;
        var cosPoly = (float)2.443315711809948E-005;
        cosPoly = MathF.FusedMultiplyAdd(cosPoly, z, (float)-1.388731625493765E-003);
        cosPoly = MathF.FusedMultiplyAdd(cosPoly, z, (float)4.166664568298827E-002);
        cosPoly *= z;
        cosPoly = MathF.FusedMultiplyAdd(cosPoly, z, -(z * 0.5f));
        cosPoly += 1f;

        var sinPoly = (float)-1.9515295891E-4;
        sinPoly = MathF.FusedMultiplyAdd(sinPoly, z, (float)8.3321608736E-3);
        sinPoly = MathF.FusedMultiplyAdd(sinPoly, z, (float)-1.6666654611E-1);
        sinPoly *= z;
        sinPoly = MathF.FusedMultiplyAdd(sinPoly, x, x);

        // The library selects with bit masks and adds the unselected +0 to the selected value; the
        // additions are kept because they turn a −0 result into +0 as the vector code does.
        var sinSelectsSinPoly = (j & 2) == 0;
        var sinPart = sinSelectsSinPoly ? sinPoly : 0f;
        var cosPart = sinSelectsSinPoly ? 0f : cosPoly;
        var sinValue = cosPart + sinPart;
        var cosValue = (cosPoly - cosPart) + (sinPoly - sinPart);
        sin = (j & 4) != 0 ? -sinValue : sinValue;
        cos = ((j - 2) & 4) == 0 ? -cosValue : cosValue;
    }
}
