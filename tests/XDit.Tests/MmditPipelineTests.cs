using XDit.Pipelines;

namespace XDit.Tests;

/// <summary>The SD3 and Flux pipelines end to end on their built-in tiny models (random weights written
/// as diffusers folders and loaded back): reproducible per seed, guidance as each model family uses it,
/// the latent layouts, and the errors a request can meet.</summary>
[TestFixture]
public class MmditPipelineTests
{
    static string _sd3 = null!, _flux = null!;

    [OneTimeSetUp]
    public void WriteModels()
    {
        _sd3 = Directory.CreateTempSubdirectory("xdit-tiny-sd3").FullName;
        Architectures.WriteRandomFolder("tiny-sd3", _sd3, seed: 5, DType.F32);
        _flux = Directory.CreateTempSubdirectory("xdit-tiny-flux").FullName;
        Architectures.WriteRandomFolder("tiny-flux", _flux, seed: 6, DType.F32);
    }

    [OneTimeTearDown]
    public void DeleteModels()
    {
        Directory.Delete(_sd3, recursive: true);
        Directory.Delete(_flux, recursive: true);
    }

    static GenerationRequest Request(ulong seed, double guidance) => new()
    {
        Prompts = ["a castle on a hill"], Height = 128, Width = 128, Steps = 3, Seed = seed, GuidanceScale = guidance, MaxSequenceLength = 30,
    };

    [Test]
    public void Sd3IsReproducibleAndGuided()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PipelineLoader.Load(_sd3, context);
        Assert.That(pipeline, Is.InstanceOf<SD3Pipeline>());
        var first = pipeline.Generate(Request(1, 7.0));
        var again = pipeline.Generate(Request(1, 7.0));
        var other = pipeline.Generate(Request(2, 7.0));
        var unguided = pipeline.Generate(Request(1, 1.0) with { LatentsOnly = true });
        Assert.That(first.LatentShape, Is.EqualTo(new long[] { 1, 16, 16, 16 }));
        Assert.That(again.Images[0], Is.EqualTo(first.Images[0]));
        Assert.That(other.Images[0], Is.Not.EqualTo(first.Images[0]));
        Assert.That(unguided.Latents, Is.Not.EqualTo(first.Latents), "guidance changes the result");
        Assert.That(first.Latents.All(float.IsFinite));
    }

    [Test]
    public void FluxIsReproducibleAndRefusesNegativePrompts()
    {
        using var context = Contexts.Cpu();
        using var pipeline = (FluxPipeline)PipelineLoader.Load(_flux, context);
        Assert.That(pipeline.HasGuidanceEmbedding, "tiny-flux is shaped like FLUX.1-dev");
        var first = pipeline.Generate(Request(3, 3.5));
        var again = pipeline.Generate(Request(3, 3.5));
        var otherGuidance = pipeline.Generate(Request(3, 5.0) with { LatentsOnly = true });
        Assert.That(first.LatentShape, Is.EqualTo(new long[] { 1, 16, 16, 16 }), "unpacked latents");
        Assert.That(again.Images[0], Is.EqualTo(first.Images[0]));
        Assert.That(otherGuidance.Latents, Is.Not.EqualTo(first.Latents), "the guidance embedding changes the result");
        var error = Assert.Throws<XDitException>(() => pipeline.Generate(Request(3, 3.5) with { NegativePrompt = "blurry" }))!;
        Assert.That(error.Message, Does.Contain("guidance-distilled"));
        Assert.That(Assert.Throws<XDitException>(() => pipeline.Generate(Request(3, 3.5) with { Height = 120 }))!.Message, Does.Contain("multiples of 16"));
    }

    [TestCase("sd3-medium")]
    [TestCase("flux-dev")]
    [TestCase("flux-schnell")]
    public void RealLayoutsRunAtReducedWidth(string name)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-" + name).FullName;
        try
        {
            if (name.StartsWith("sd3", StringComparison.Ordinal))
                SD3Architecture.Get(name).Reduced(16, 2).WriteRandomFolder(folder, seed: 1, DType.BF16, maxShardBytes: 64 << 10);
            else
                FluxArchitecture.Get(name).Reduced(16, 2).WriteRandomFolder(folder, seed: 1, DType.BF16, maxShardBytes: 64 << 10);
            using var context = Contexts.Cpu();
            using var pipeline = PipelineLoader.Load(folder, context, DType.BF16);
            var result = pipeline.Generate(new GenerationRequest
            {
                Prompts = ["a lighthouse"], Height = 64, Width = 64, Steps = 1, GuidanceScale = name == "flux-schnell" ? 0 : 3.5, MaxSequenceLength = 16,
            });
            Assert.That(result.Images[0], Has.Length.EqualTo(64 * 64 * 3));
            Assert.That(result.Latents.All(float.IsFinite));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
