using System.Text.Json;
using XDit.Rng;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>
/// The seeded noise against PyTorch's own draws (<c>golden/rng</c>: <c>torch.randn</c> on a seeded CPU
/// generator, PyTorch 1.13), compared bit for bit. The cases come from <c>case.json</c>, so new ones are
/// tested as they are added; the golden set holds a draw of fewer than 16 elements (the double-precision
/// path), one that is not a multiple of 16 (the redrawn tail) and two successive draws from one generator.
/// </summary>
[TestFixture]
public class RandomTests
{
    /// <summary>One generator seeded once, then one <c>torch.randn</c> per shape, each compared with the
    /// output tensor of the same index.</summary>
    sealed record GoldenCase(string Name, ulong Seed, long[][] Shapes, string[] Outputs)
    {
        public override string ToString() => $"{Name} (seed {Seed})";
    }

    static string GoldenRngFolder()
    {
        var folder = Path.Combine(AbiTests.RepositoryRoot(), "..", "shared", "golden", "rng");
        if (!File.Exists(Path.Combine(folder, "case.json")))
            Assert.Ignore($"the golden data is not installed ({Path.GetFullPath(folder)} has no case.json)");
        return folder;
    }

    static GoldenTensors GoldenOutputs() => GoldenTensors.Load(Path.Combine(GoldenRngFolder(), "outputs.safetensors"));

    /// <summary>Every case of case.json: a single draw has "shape" and its output is named like the
    /// case; successive draws have "shapes" and their outputs are named "a then b".</summary>
    static List<GoldenCase> GoldenCases()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(GoldenRngFolder(), "case.json")));
        var cases = new List<GoldenCase>();
        foreach (var c in json.RootElement.GetProperty("cases").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            var seed = c.GetProperty("seed").GetUInt64();
            if (c.TryGetProperty("shape", out var shape))
            {
                cases.Add(new GoldenCase(name, seed, [ShapeOf(shape)], [name]));
                continue;
            }
            var shapes = c.GetProperty("shapes").EnumerateArray().Select(ShapeOf).ToArray();
            var outputs = name.Split(" then ");
            Assert.That(outputs, Has.Length.EqualTo(shapes.Length), $"case '{name}': one output name per draw");
            cases.Add(new GoldenCase(name, seed, shapes, outputs));
        }
        Assert.That(cases, Is.Not.Empty, "case.json lists no cases");
        return cases;
    }

    static long[] ShapeOf(JsonElement shape) => shape.EnumerateArray().Select(d => d.GetInt64()).ToArray();

    /// <summary>Draws the case with a fresh generator and asserts every element's bits.</summary>
    static void AssertBitExact(GoldenCase goldenCase, GoldenTensors outputs)
    {
        var generator = new TorchGenerator(goldenCase.Seed);
        for (int i = 0; i < goldenCase.Shapes.Length; i++)
        {
            var shape = goldenCase.Shapes[i];
            var output = goldenCase.Outputs[i];
            Assert.That(outputs[output].Shape, Is.EqualTo(shape), $"{goldenCase}: shape of golden {output}");
            AssertSameBits(generator.Randn(shape), outputs.F32(output), $"{goldenCase}, draw {i + 1} ({output})");
        }
    }

    static void AssertSameBits(float[] actual, float[] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), $"{what}: element count");
        var differing = Enumerable.Range(0, expected.Length)
            .Where(i => BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]))
            .ToList();
        if (differing.Count == 0) return;
        var first = differing[0];
        Assert.Fail($"{what}: {differing.Count} of {expected.Length} elements differ; first at {first}: " +
                    $"{actual[first]:R} (0x{BitConverter.SingleToInt32Bits(actual[first]):x8}) instead of " +
                    $"{expected[first]:R} (0x{BitConverter.SingleToInt32Bits(expected[first]):x8})");
    }

    static GoldenCase SingleDraw(Func<long, bool> count)
    {
        var match = GoldenCases().FirstOrDefault(c => c.Shapes.Length == 1 && count(Shapes.Product(c.Shapes[0])));
        Assert.That(match, Is.Not.Null, "the golden set has no such case");
        return match!;
    }

    [Test]
    public void EngineIsTheStandardMt19937()
    {
        // C++ [rand.predef]: the 10000th output of a default-seeded (5489) std::mt19937 is 4123659995.
        var engine = new MersenneTwister19937(5489);
        Assert.That(engine.NextUInt32(), Is.EqualTo(3499211612u), "first output");
        uint last = 0;
        for (int i = 1; i < 10000; i++) last = engine.NextUInt32();
        Assert.That(last, Is.EqualTo(4123659995u), "10000th output");
    }

    [Test]
    public void EveryGoldenCaseIsBitExact()
    {
        var outputs = GoldenOutputs();
        var cases = GoldenCases();
        Assert.Multiple(() =>
        {
            foreach (var goldenCase in cases) AssertBitExact(goldenCase, outputs);
        });
    }

    [Test]
    public void SuccessiveDrawsContinueOneStream()
    {
        var successive = GoldenCases().Where(c => c.Shapes.Length > 1).ToList();
        Assert.That(successive, Is.Not.Empty, "the golden set has no successive-draw case");
        var outputs = GoldenOutputs();
        foreach (var goldenCase in successive) AssertBitExact(goldenCase, outputs);
    }

    [Test]
    public void FewerThanSixteenElementsTakeTheDoublePrecisionPath() =>
        AssertBitExact(SingleDraw(n => n is > 1 and < 16), GoldenOutputs());

    [Test]
    public void ACountNotAMultipleOfSixteenRedrawsTheLastSixteen() =>
        AssertBitExact(SingleDraw(n => n > 16 && n % 16 != 0), GoldenOutputs());

    /// <summary>Below 16 elements each normal comes from a Box–Muller pair whose sine half waits in the
    /// generator for the next element, even one of the next draw: n draws of one element each give the
    /// same numbers as one draw of n.</summary>
    [Test]
    public void SmallDrawsShareTheCachedSecondSample()
    {
        var goldenCase = SingleDraw(n => n is > 1 and < 16);
        var expected = GoldenOutputs().F32(goldenCase.Outputs[0]);
        var generator = new TorchGenerator(goldenCase.Seed);
        var head = (expected.Length / 2) | 1; // odd: the second draw starts on a cached sample
        var actual = generator.Randn(head).Concat(generator.Randn(expected.Length - head)).ToArray();
        AssertSameBits(actual, expected, $"{goldenCase} drawn as {head} + {expected.Length - head}");
    }

    [Test]
    public void OnlyTheLow32BitsOfTheSeedCount()
    {
        var goldenCase = SingleDraw(n => n >= 16);
        Assert.That(goldenCase.Seed, Is.LessThan(1UL << 32));
        var generator = new TorchGenerator(goldenCase.Seed | (0xABCDUL << 32));
        Assert.That(generator.Seed, Is.EqualTo(goldenCase.Seed | (0xABCDUL << 32)), "Seed reports the seed as given");
        AssertSameBits(generator.Randn(goldenCase.Shapes[0]), GoldenOutputs().F32(goldenCase.Outputs[0]), $"{goldenCase} + 0xABCD << 32");
    }

    [Test]
    public void NoiseTensorOnTheCpuHasTheGoldenBits()
    {
        var goldenCase = SingleDraw(n => n >= 16 && n % 16 != 0);
        var expected = GoldenOutputs().F32(goldenCase.Outputs[0]);
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var noise = Noise.Randn(context, new TorchGenerator(goldenCase.Seed), goldenCase.Shapes[0]);
        Assert.That(noise.DType, Is.EqualTo(DType.F32));
        Assert.That(noise.Shape.ToArray(), Is.EqualTo(goldenCase.Shapes[0]));
        AssertSameBits(noise.ToArray<float>(), expected, $"{goldenCase} as a CPU tensor");
    }

    [Test]
    public void NoiseTensorOnCudaHasTheGoldenBits()
    {
        var goldenCase = SingleDraw(n => n >= 16);
        var expected = GoldenOutputs().F32(goldenCase.Outputs[0]);
        using var context = Contexts.CudaOrIgnore();
        using var scope = new TensorScope();
        var noise = Noise.Randn(context, new TorchGenerator(goldenCase.Seed), goldenCase.Shapes[0]);
        AssertSameBits(noise.ToArray<float>(), expected, $"{goldenCase} as a CUDA tensor");
    }

    /// <summary>The dtype overload rounds the f32 draw to nearest even (checked against .NET's own
    /// float → Half conversion) and advances the generator like an f32 draw.</summary>
    [Test]
    public void NoiseInHalfPrecisionIsTheRoundedF32Draw()
    {
        var goldenCase = GoldenCases().First(c => c.Shapes.Length > 1);
        var outputs = GoldenOutputs();
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var generator = new TorchGenerator(goldenCase.Seed);
        for (int i = 0; i < goldenCase.Shapes.Length; i++)
        {
            var noise = Noise.Randn(context, generator, DType.F16, goldenCase.Shapes[i]);
            Assert.That(noise.DType, Is.EqualTo(DType.F16));
            var expected = outputs.F32(goldenCase.Outputs[i]).Select(f => BitConverter.HalfToInt16Bits((Half)f)).ToArray();
            var actual = noise.ToArray<Half>().Select(BitConverter.HalfToInt16Bits).ToArray();
            Assert.That(actual, Is.EqualTo(expected), $"{goldenCase}, draw {i + 1} in f16");
        }
    }

    [Test]
    public void RejectedArgumentsLeaveTheGeneratorUntouched()
    {
        var goldenCase = SingleDraw(n => n >= 16);
        using var context = Contexts.Cpu();
        var generator = new TorchGenerator(goldenCase.Seed);

        var negative = Assert.Throws<ArgumentException>(() => generator.Randn(2, -3))!;
        Assert.That(negative.Message, Does.Contain("[2, -3]"));
        var integer = Assert.Throws<ArgumentException>(() => Noise.Randn(context, generator, DType.I32, 4, 4))!;
        Assert.That(integer.Message, Does.Contain("[4, 4]").And.Contain("i32"));

        AssertSameBits(generator.Randn(goldenCase.Shapes[0]), GoldenOutputs().F32(goldenCase.Outputs[0]),
            $"{goldenCase} after rejected calls");
    }
}
