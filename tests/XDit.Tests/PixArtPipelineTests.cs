using System.Text.Json;
using XDit.Pipelines;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The PixArt pipeline end to end on the built-in tiny model (weights written to a diffusers
/// folder, loaded back by the same loader as a real checkpoint), and the real checkpoints' layout at
/// reduced width.</summary>
[TestFixture]
public class PixArtPipelineTests
{
    static string _tinyFolder = null!;

    [OneTimeSetUp]
    public void WriteTinyModel()
    {
        _tinyFolder = Directory.CreateTempSubdirectory("xdit-tiny-pixart").FullName;
        PixArtArchitecture.Get("tiny-pixart").WriteRandomFolder(_tinyFolder, seed: 7, DType.F32);
    }

    [OneTimeTearDown]
    public void DeleteTinyModel() => Directory.Delete(_tinyFolder, recursive: true);

    static GenerationRequest Request(ulong seed) => new()
    {
        Prompts = ["a red fox in the snow"], Height = 128, Width = 128, Steps = 4, GuidanceScale = 4.5, Seed = seed,
        MaxSequenceLength = 30,
    };

    [Test]
    public void SameSeedSameImageOtherSeedOtherImage()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_tinyFolder, context);
        var first = pipeline.Generate(Request(42));
        var again = pipeline.Generate(Request(42));
        var other = pipeline.Generate(Request(43));
        Assert.That(first.Images, Has.Count.EqualTo(1));
        Assert.That(first.Images[0], Has.Length.EqualTo(128 * 128 * 3));
        Assert.That(again.Images[0], Is.EqualTo(first.Images[0]), "a seed reproduces its image exactly");
        Assert.That(other.Images[0], Is.Not.EqualTo(first.Images[0]));
        Assert.That(first.Images[0].Distinct().Count(), Is.GreaterThan(16), "a picture, not a flat image");
        Assert.That(first.Timings.Select(t => t.Stage), Is.EqualTo(new[] { "text encoder", "step 1", "step 2", "step 3", "step 4", "vae decode" }));
        Assert.That(first.LatentShape, Is.EqualTo(new long[] { 1, 4, 16, 16 }));
        Assert.That(first.Latents.All(float.IsFinite));
    }

    [Test]
    public void GuidanceAndBatchesFollowDiffusersLayout()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_tinyFolder, context);
        var batch = pipeline.Generate(Request(5) with { Prompts = ["a cat", "a dog"], ImagesPerPrompt = 2, LatentsOnly = true });
        Assert.That(batch.LatentShape, Is.EqualTo(new long[] { 4, 4, 16, 16 }));
        Assert.That(batch.Images, Is.Empty);
        var unguided = pipeline.Generate(Request(5) with { GuidanceScale = 1, LatentsOnly = true });
        var guided = pipeline.Generate(Request(5) with { LatentsOnly = true });
        Assert.That(unguided.Latents, Is.Not.EqualTo(guided.Latents), "guidance changes the result");
    }

    [Test]
    public void InitialLatentIsTorchRandnOfTheSeed()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_tinyFolder, context);
        var golden = GoldenTensors.Load(Path.Combine(GoldenTensors.CaseFolder("rng"), "outputs.safetensors"));
        // golden rng case "randn_0": seed 0, shape [1, 4, 8, 8] — a 64×64 request with the VAE factor 8.
        using var latents = pipeline.InitialLatents(Request(0) with { Height = 64, Width = 64 });
        Assert.That(latents.ToArray<float>(), Is.EqualTo(golden.F32("randn_0")));
    }

    [Test]
    public void InvalidRequestsAreRejected()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_tinyFolder, context);
        Assert.That(Assert.Throws<XDitException>(() => pipeline.Generate(Request(1) with { Height = 100 }))!.Message, Does.Contain("multiples of 16"));
        Assert.That(Assert.Throws<XDitException>(() => pipeline.Generate(Request(1) with { Prompts = [""] }))!.Message, Does.Contain("empty"));
        Assert.That(Assert.Throws<XDitException>(() => pipeline.Generate(Request(1) with { Steps = 0 }))!.Message, Does.Contain("step count"));
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        Assert.Throws<OperationCanceledException>(() => pipeline.Generate(Request(1), cancellation: cancelled.Token));
        Assert.That(pipeline.Generate(Request(1) with { Steps = 1 }).Images, Has.Count.EqualTo(1), "usable after errors");
    }

    [Test]
    public void RealLayoutsLoadBackAtReducedWidth([Values("pixart-alpha", "pixart-sigma")] string name)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-" + name).FullName;
        try
        {
            var architecture = PixArtArchitecture.Get(name).Reduced(factor: 16, layers: 2);
            architecture.WriteRandomFolder(folder, seed: 1, DType.BF16, maxShardBytes: 64 << 10);
            foreach (var component in new[] { "transformer/diffusion_pytorch_model", "text_encoder/model" })
                Assert.That(File.Exists(Path.Combine(folder, component + ".safetensors.index.json")), component + " is sharded with an index");
            using var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "text_encoder/model.safetensors.index.json")));
            var names = index.RootElement.GetProperty("weight_map").EnumerateObject().Select(p => p.Name).ToList();
            Assert.That(names, Does.Contain("shared.weight").And.Not.Contain("encoder.embed_tokens.weight"), "T5's tied embedding is stored once");
            using var modelIndex = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "model_index.json")));
            Assert.That(modelIndex.RootElement.GetProperty("_class_name").GetString(),
                Is.EqualTo(name == "pixart-sigma" ? "PixArtSigmaPipeline" : "PixArtAlphaPipeline"));

            using var context = Contexts.Cpu();
            using var pipeline = PixArtPipeline.Load(folder, context, DType.BF16);
            Assert.That(pipeline.IsSigma, Is.EqualTo(name == "pixart-sigma"));
            var result = pipeline.Generate(new GenerationRequest
            {
                Prompts = ["a lighthouse"], Height = 64, Width = 64, Steps = 1, MaxSequenceLength = 16, UseResolutionBinning = false,
            });
            Assert.That(result.Images[0], Has.Length.EqualTo(64 * 64 * 3));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
