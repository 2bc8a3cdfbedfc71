using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Tests;

/// <summary>CFG and data parallelism on in-process ranks give the single-rank result (the tiny PixArt,
/// f32): the design asks for relative L2 < 1e-6; what the kernels actually give is reported.</summary>
[TestFixture]
public class ParallelGenerationTests
{
    static string _folder = null!;

    [OneTimeSetUp]
    public void WriteModel()
    {
        _folder = Directory.CreateTempSubdirectory("xdit-parallel").FullName;
        PixArtArchitecture.Get("tiny-pixart").WriteRandomFolder(_folder, seed: 11, DType.F32);
    }

    [OneTimeTearDown]
    public void DeleteModel() => Directory.Delete(_folder, recursive: true);

    static readonly GenerationRequest Request = new()
    {
        Prompts = ["a red fox", "a blue whale"], NegativePrompt = "blurry", Height = 128, Width = 128, Steps = 3,
        GuidanceScale = 4.5, Seed = 9, MaxSequenceLength = 30,
    };

    static GenerationResult SingleRank()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_folder, context);
        return pipeline.Generate(Request);
    }

    [TestCase(1, true)]
    [TestCase(2, false)]
    [TestCase(2, true)]
    public void MeshesGiveTheSingleRankLatents(int dataParallel, bool cfg)
    {
        var expected = SingleRank();
        var parallel = ParallelGeneration.Run(_folder, Request, new ParallelConfig { DataParallelDegree = dataParallel, UseCfgParallel = cfg },
            timeout: TimeSpan.FromSeconds(60));
        Assert.That(parallel.LatentShape, Is.EqualTo(expected.LatentShape));
        var error = Reference.RelativeL2(parallel.Latents, expected.Latents);
        TestContext.Out.WriteLine($"dp {dataParallel} cfg {(cfg ? 2 : 1)}: relative L2 {error:E2}");
        Assert.That(error, Is.LessThan(1e-6));
        Assert.That(parallel.Images, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
            Assert.That(parallel.Images[i].Zip(expected.Images[i]).Count(p => Math.Abs(p.First - p.Second) > 1), Is.Zero, $"image {i}");
    }

    [Test]
    public void InvalidMeshesAreRejected()
    {
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(_folder, Request, new ParallelConfig { DataParallelDegree = 3 }))!.Message,
            Does.Contain("must divide the 2 images"));
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(_folder, Request with { GuidanceScale = 1 },
            new ParallelConfig { UseCfgParallel = true }))!.Message, Does.Contain("guidance"));
    }
}
