using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>
/// The parallel VAE decode (rows split over in-process ranks: halo rows, merged group-norm statistics,
/// gathered keys and values) against the one-rank decode of the same weights (diffusers' tiny VAEs of
/// the golden data), for 2, 3 and 4 ranks and heights that do not split evenly; and the split statistics
/// ops against the fp64 group norm.
/// </summary>
[TestFixture]
public class ParallelVaeTests
{
    /// <summary>(image, activation bytes at the peak) of a decode on one rank.</summary>
    static (float[] Image, ulong PeakBytes) DecodeOnOneRank(string name, float[] latents, long[] shape)
    {
        using var context = Contexts.Cpu(threads: 1);
        using var vae = VaeTests.LoadGolden(name, context);
        using var scope = new TensorScope();
        var before = context.AllocatorStats.BytesInUse;
        context.ResetPeak();
        var image = vae.Decode(Tensor.FromArray(context, latents, shape)).ToArray<float>();
        return (image, context.AllocatorStats.PeakBytesInUse - before);
    }

    static (float[] Image, ulong PeakBytes)[] DecodeOnRanks(string name, float[] latents, long[] shape, int ranks) =>
        InProcessWorld.Run(ranks, group =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var vae = VaeTests.LoadGolden(name, context);
            using var scope = new TensorScope();
            var before = context.AllocatorStats.BytesInUse;
            context.ResetPeak();
            var image = vae.DecodeInParallel(Tensor.FromArray(context, latents, shape), group).ToArray<float>();
            return (image, context.AllocatorStats.PeakBytesInUse - before);
        }, TimeSpan.FromSeconds(60));

    [TestCase("vae", 2, 8)]
    [TestCase("vae", 3, 10)]   // 4 + 3 + 3 latent rows
    [TestCase("vae", 4, 10)]   // 3 + 3 + 2 + 2
    [TestCase("vae_flux", 3, 7)]
    public void ParallelDecodeEqualsTheOneRankDecode(string name, int ranks, int height)
    {
        var channels = name == "vae_flux" ? 16 : 4;
        long[] shape = [1, channels, height, 6];
        var latents = Reference.RandomFloats(new Random(height * 10 + ranks), (int)(channels * height * 6), 2.0);
        var (expected, singlePeak) = DecodeOnOneRank(name, latents, shape);
        var parallel = DecodeOnRanks(name, latents, shape, ranks);
        for (int r = 0; r < ranks; r++)
        {
            var error = Reference.RelativeL2(parallel[r].Image, expected);
            TestContext.Out.WriteLine($"{name} {ranks} ranks, {height} latent rows: rank {r} relative L2 {error:E2}, peak {parallel[r].PeakBytes} B (one rank {singlePeak} B)");
            Assert.That(error, Is.LessThan(1e-5), $"rank {r}");
            Assert.That(parallel[r].Image, Is.EqualTo(parallel[0].Image), "every rank gathers the same image");
        }
    }

    /// <summary>Each rank holds about a 1/ranks share of the feature maps (plus halo rows and the gathered
    /// image), so the peak activation memory per rank falls with the rank count.</summary>
    [Test]
    public void PeakMemoryPerRankFallsWithTheRankCount()
    {
        long[] shape = [1, 4, 32, 32];
        var latents = Reference.RandomFloats(new Random(5), 4 * 32 * 32, 2.0);
        var (_, one) = DecodeOnOneRank("vae", latents, shape);
        var two = DecodeOnRanks("vae", latents, shape, 2).Max(r => r.PeakBytes);
        var four = DecodeOnRanks("vae", latents, shape, 4).Max(r => r.PeakBytes);
        TestContext.Out.WriteLine($"peak activation bytes per rank: 1 rank {one}, 2 ranks {two}, 4 ranks {four}");
        Assert.That(two, Is.LessThan(one * 0.75));
        Assert.That(four, Is.LessThan(two * 0.75));
    }

    [Test]
    public void SplitGroupNormStatisticsGiveTheWholeGroupNorm()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const int n = 2, c = 12, h = 9, w = 5, groups = 4;
        var (x, _) = Data.Random(context, DType.F32, 1, 2, n, c, h, w);
        var (weight, _) = Data.Random(context, DType.F32, 2, 1, c);
        var (bias, _) = Data.Random(context, DType.F32, 3, 1, c);
        var whole = Normalization.GroupNorm(x, groups, weight, bias, 1e-6).ToArray<float>();
        // Rows 0–3, 4–5, 6–8 as three ranks would hold them; their statistics merged in fp64 here.
        (int Start, int Rows)[] bands = [(0, 4), (4, 2), (6, 3)];
        var stats = bands.Select(b => Normalization.GroupNormStatistics(x.Narrow(2, b.Start, b.Rows), groups).ToArray<float>()).ToArray();
        var merged = new float[n * groups * 2];
        for (int i = 0; i < n * groups; i++)
        {
            double count = bands.Sum(b => (double)b.Rows * w * (c / groups));
            double mean = bands.Select((b, k) => b.Rows * w * (c / groups) * (double)stats[k][i * 2]).Sum() / count;
            double squares = bands.Select((b, k) => stats[k][i * 2 + 1] + b.Rows * w * (c / groups) * Math.Pow(stats[k][i * 2] - mean, 2)).Sum();
            merged[i * 2] = (float)mean;
            merged[i * 2 + 1] = (float)(1 / Math.Sqrt(squares / count + 1e-6));
        }
        var statistics = Tensor.FromArray(context, merged, n, groups, 2);
        var pieces = bands.Select(b => Normalization.GroupNormWithStatistics(x.Narrow(2, b.Start, b.Rows), groups, statistics, weight, bias)).ToArray();
        Assert.That(Reference.RelativeL2(Layout.Cat(2, pieces).ToArray<float>(), whole), Is.LessThan(1e-6));
    }
}
