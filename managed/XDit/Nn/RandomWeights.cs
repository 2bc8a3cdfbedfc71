using System.Numerics;
using System.Text;
using XDit.Tensors;

namespace XDit.Nn;

/// <summary>
/// Deterministic random weights for a module tree, for speed measurements at full size and for the
/// built-in tiny pipelines: every parameter gets its own stream seeded from the global seed and its
/// name, so a weight does not depend on which other parameters exist. Matrices are N(0, 1/fan_in)
/// (unit-variance activations through the layers); vectors named <c>*weight</c> (norm scales) are
/// 1 + 0.1·N(0, 1); other vectors (biases) 0.05·N(0, 1) — the initialisation of the golden models.
/// </summary>
public static class RandomWeights
{
    public static void Initialize(Module root, DeviceContext context, DType dtype, ulong seed)
    {
        foreach (var (path, parameter) in root.NamedParameters())
        {
            var shape = parameter.Shape.ToArray();
            var values = new float[Shapes.Product(shape)];
            var random = new NormalStream(seed ^ Fnv1a(path));
            if (shape.Length >= 2)
            {
                var scale = 1 / Math.Sqrt(Shapes.Product(shape.AsSpan(1)));
                for (int i = 0; i < values.Length; i++) values[i] = (float)(random.Next() * scale);
            }
            else if (path.EndsWith("weight", StringComparison.Ordinal))
                for (int i = 0; i < values.Length; i++) values[i] = (float)(1 + 0.1 * random.Next());
            else
                for (int i = 0; i < values.Length; i++) values[i] = (float)(0.05 * random.Next());
            using var f32 = Tensor.FromArray(context, values, shape);
            parameter.Assign(dtype == DType.F32 ? f32.Clone() : f32.To(dtype));
        }
    }

    static ulong Fnv1a(string text)
    {
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(text)) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }

    /// <summary>Standard normals from xoshiro256** (seeded by SplitMix64) through Box–Muller: fast
    /// enough for billions of weights, and the same on every machine.</summary>
    sealed class NormalStream
    {
        ulong _s0, _s1, _s2, _s3;
        double? _spare;

        public NormalStream(ulong seed)
        {
            _s0 = SplitMix(ref seed);
            _s1 = SplitMix(ref seed);
            _s2 = SplitMix(ref seed);
            _s3 = SplitMix(ref seed);
        }

        static ulong SplitMix(ref ulong state)
        {
            var z = state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        ulong NextBits()
        {
            var result = BitOperations.RotateLeft(_s1 * 5, 7) * 9;
            var t = _s1 << 17;
            _s2 ^= _s0;
            _s3 ^= _s1;
            _s1 ^= _s2;
            _s0 ^= _s3;
            _s2 ^= t;
            _s3 = BitOperations.RotateLeft(_s3, 45);
            return result;
        }

        double Uniform() => ((NextBits() >> 11) + 0.5) * (1.0 / (1UL << 53)); // in (0, 1)

        public double Next()
        {
            if (_spare is { } spare)
            {
                _spare = null;
                return spare;
            }
            var radius = Math.Sqrt(-2 * Math.Log(Uniform()));
            var angle = 2 * Math.PI * Uniform();
            _spare = radius * Math.Sin(angle);
            return radius * Math.Cos(angle);
        }
    }
}
