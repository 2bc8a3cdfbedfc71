using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Tests;

/// <summary>
/// Every parallel mesh on in-process ranks gives the single-rank latents, for each model family (the
/// tiny PixArt, SD3 and Flux, f32, 8 transformer blocks, 4 heads): data parallel, CFG, Ulysses, Ring and
/// their products up to 8 ranks. The image is 144², so the 81 image tokens divide no degree and the
/// padding must be masked; SD3's 107 text tokens (77 CLIP + 30 T5) are replicated on every rank, 108
/// are split with the image; Flux's 30 are split over 2 ranks and replicated over 4 or 8. Ulysses 4
/// is the head-count limit. Tolerances: relative L2 < 2e-6 for CFG and data parallel alone (they change
/// only batch sizes, and with them the rounding of OpenBLAS, whose sgemm rounds by the rows of a call:
/// 0.5–1.2e-6 measured after two steps; bit-identical with the built-in GEMM, tested below), < 1e-5 with
/// sequence parallelism (attention merged in another order).
/// </summary>
[TestFixture]
public class ParallelGenerationTests
{
    static TinyModelFolders Folders = null!;
    static readonly Dictionary<(string, int), GenerationResult> SingleRank = [];

    [OneTimeSetUp]
    public void WriteModels() => Folders = new TinyModelFolders("parallel", seed: 11, "tiny-pixart", "tiny-sd3", "tiny-flux");

    [OneTimeTearDown]
    public void DeleteModels() => Folders.Dispose();

    static GenerationRequest Request(string family, int textLength) => new()
    {
        Prompts = ["a red fox", "a blue whale"], NegativePrompt = family == "tiny-flux" ? "" : "blurry",
        Height = 144, Width = 144, Steps = 2, GuidanceScale = family == "tiny-flux" ? 3.5 : 4.5, Seed = 9, MaxSequenceLength = textLength,
    };

    static GenerationResult Single(string family, int textLength)
    {
        lock (SingleRank)
        {
            if (SingleRank.TryGetValue((family, textLength), out var cached)) return cached;
            using var context = Contexts.Cpu();
            using var pipeline = PipelineLoader.Load(Folders[family], context);
            return SingleRank[(family, textLength)] = pipeline.Generate(Request(family, textLength));
        }
    }

    /// <summary>Every mesh of dp ∈ {1, 2}, cfg ∈ {1, 2}, ulysses ∈ {1, 2, 4}, ring ∈ {1, 2, 4} on at most 8 ranks
    /// (Flux without CFG), plus SD3 with its text split with the image.</summary>
    static IEnumerable<TestCaseData> Meshes()
    {
        foreach (var family in new[] { "tiny-pixart", "tiny-sd3", "tiny-flux" })
        foreach (var dp in new[] { 1, 2 })
        foreach (var cfg in family == "tiny-flux" ? new[] { false } : [false, true])
        foreach (var ulysses in new[] { 1, 2, 4 })
        foreach (var ring in new[] { 1, 2, 4 })
        {
            var config = new ParallelConfig { DataParallelDegree = dp, UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring };
            if (config.WorldSize is 1 or > 8) continue;
            yield return new TestCaseData(family, 30, dp, cfg, ulysses, ring);
            if (family == "tiny-sd3" && config.SequenceParallelDegree is 2 or 4 && dp == 1) yield return new TestCaseData(family, 31, dp, cfg, ulysses, ring);
        }
    }

    [TestCaseSource(nameof(Meshes))]
    public void MeshGivesTheSingleRankLatents(string family, int textLength, int dataParallel, bool cfg, int ulysses, int ring)
    {
        var config = new ParallelConfig { DataParallelDegree = dataParallel, UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring };
        var request = Request(family, textLength) with { LatentsOnly = config.SequenceParallelDegree > 1 };
        var expected = Single(family, textLength);
        var parallel = ParallelGeneration.Run(Folders[family], request, config, timeout: TimeSpan.FromSeconds(60));
        Assert.That(parallel.LatentShape, Is.EqualTo(expected.LatentShape));
        var error = Reference.RelativeL2(parallel.Latents, expected.Latents);
        TestContext.Out.WriteLine($"{family} {config}: relative L2 {error:E2}");
        Assert.That(error, Is.LessThan(config.SequenceParallelDegree > 1 ? 1e-5 : 2e-6));
        if (request.LatentsOnly) return;
        Assert.That(parallel.Images, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
            Assert.That(parallel.Images[i].Zip(expected.Images[i]).Count(p => Math.Abs(p.First - p.Second) > 1), Is.Zero, $"image {i}");
    }

    /// <summary>With the built-in GEMM every CPU kernel is batch- and thread-invariant (OpenBLAS's sgemm is
    /// not: its rounding depends on the rows of a call), so splitting the batch changes no bit.</summary>
    [TestCase("tiny-pixart", 2, true)]
    [TestCase("tiny-sd3", 1, true)]
    [TestCase("tiny-flux", 2, false)]
    public void CfgAndDataParallelAreBitIdenticalWithBatchInvariantKernels(string family, int dataParallel, bool cfg)
    {
        var request = Request(family, 30) with { LatentsOnly = true };
        var options = new ContextOptions { CpuGemm = CpuGemm.Builtin };
        using var context = DeviceContext.Create(Device.Cpu, options);
        using var pipeline = PipelineLoader.Load(Folders[family], context);
        var expected = pipeline.Generate(request);
        var parallel = ParallelGeneration.Run(Folders[family], request, new ParallelConfig { DataParallelDegree = dataParallel, UseCfgParallel = cfg },
            timeout: TimeSpan.FromSeconds(60), contextOptions: options);
        Assert.That(parallel.Latents, Is.EqualTo(expected.Latents));
    }

    /// <summary>The bytes a rank sends in one denoising step of USP (Ulysses 2 × Ring 2) are the cost
    /// model's (DESIGN.md §5b) with the padded shard length: per block 4 all-to-alls of B·s·C elements of
    /// which (U − 1)/U leave, and R − 1 ring passes of the key and value blocks (B·U·s tokens × C/U).</summary>
    [Test]
    public void UspCommunicationVolumeIsTheCostModels()
    {
        var config = new ParallelConfig { UlyssesDegree = 2, RingDegree = 2 };
        var request = Request("tiny-pixart", 30) with { Steps = 1, LatentsOnly = true };
        var volumes = InProcessWorld.Run(config.WorldSize, world =>
        {
            var mesh = ProcessMesh.Create(world, config);
            using var context = Contexts.Cpu(threads: 1);
            using var pipeline = PipelineLoader.Load(Folders["tiny-pixart"], context);
            var before = CommunicationCounter.Snapshot();
            pipeline.Generate(request, mesh);
            return CommunicationCounter.Difference(CommunicationCounter.Snapshot(), before);
        });
        long batch = 2 * 2, blocks = 8, channels = 64, shard = (81 + 3) / 4, outChannels = 2 * 2 * 8, f32 = 4;
        var expected = new Dictionary<string, CollectiveVolume>
        {
            ["all_to_all"] = new(4 * blocks, 4 * blocks * batch * shard * channels * f32 / 2),
            ["shift"] = new(2 * blocks, 2 * blocks * batch * 2 * shard * (channels / 2) * f32),
            ["all_gather"] = new(1, 3 * batch * shard * outChannels * f32),
            ["all_reduce"] = new(1, f32 * 2 * 3 / 4), // the cancellation agreement of the step
        };
        foreach (var volume in volumes) Assert.That(volume, Is.EquivalentTo(expected));
    }

    /// <summary>In-process CPU ranks load each weight once (<see cref="SharedWeights"/>): the four ranks of a mesh
    /// hold, together, what one pipeline holds alone (bf16, so every weight is a converted copy, not the mapped file).</summary>
    [Test]
    public void CpuRanksHoldOneCopyOfTheWeights()
    {
        var folder = Folders["tiny-sd3"];
        ulong alone;
        using (var context = Contexts.Cpu())
        using (PipelineLoader.Load(folder, context, DType.BF16))
            alone = context.AllocatorStats.BytesInUse;
        using var ranks = ParallelPipeline.Load(folder, new ParallelConfig { UlyssesDegree = 2, RingDegree = 2 }, DType.BF16);
        var together = ranks.RankContexts.Sum(c => (double)c.AllocatorStats.BytesInUse);
        TestContext.Out.WriteLine($"one pipeline {alone} bytes, four ranks {together} bytes");
        Assert.That(alone, Is.GreaterThan(100_000UL));
        Assert.That(together, Is.EqualTo((double)alone).Within(10).Percent);
    }

    [Test]
    public void InvalidMeshesAreRejectedBeforeLoading()
    {
        var pixart = Folders["tiny-pixart"];
        var request = Request("tiny-pixart", 30);
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(pixart, request, new ParallelConfig { DataParallelDegree = 3 }))!.Message,
            Does.Contain("must divide the 2 images"));
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(pixart, request with { GuidanceScale = 1 },
            new ParallelConfig { UseCfgParallel = true }))!.Message, Does.Contain("guidance"));
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(pixart, request, new ParallelConfig { UlyssesDegree = 3 }))!.Message,
            Does.Contain("ulysses_degree 3 must divide the model's 4 attention heads (degrees that fit: 1, 2, 4)"));
        Assert.That(Assert.Throws<XDitException>(() => ParallelGeneration.Run(Folders["tiny-flux"], Request("tiny-flux", 30),
            new ParallelConfig { UseCfgParallel = true }))!.Message, Does.Contain("guidance-distilled"));
    }

    /// <summary>With the parallel VAE every rank of a replica decodes a band of rows; the images are the
    /// single-rank images (up to 8-bit rounding).</summary>
    [TestCase("tiny-pixart", 1, true, 2, 1)]
    [TestCase("tiny-sd3", 1, false, 1, 3)]
    [TestCase("tiny-flux", 2, false, 1, 2)]
    public void ParallelVaeGivesTheSingleRankImages(string family, int dataParallel, bool cfg, int ulysses, int ring)
    {
        var config = new ParallelConfig { DataParallelDegree = dataParallel, UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring, UseParallelVae = true };
        var expected = Single(family, 30);
        var parallel = ParallelGeneration.Run(Folders[family], Request(family, 30), config, timeout: TimeSpan.FromSeconds(60));
        Assert.That(parallel.Images, Has.Count.EqualTo(2));
        for (int i = 0; i < 2; i++)
            Assert.That(parallel.Images[i].Zip(expected.Images[i]).Max(p => Math.Abs(p.First - p.Second)), Is.LessThanOrEqualTo(1), $"image {i}");
    }

    [Test]
    public void CancellationStopsEveryRankAtTheSameStep()
    {
        using var cancel = new CancellationTokenSource();
        var progress = new Progress(p => { if (p.Stage == "denoising" && p.Step == 2) cancel.Cancel(); });
        var config = new ParallelConfig { UseCfgParallel = true, UlyssesDegree = 2 };
        Assert.Throws<OperationCanceledException>(() => ParallelGeneration.Run(Folders["tiny-pixart"], Request("tiny-pixart", 30) with { Steps = 20 },
            config, timeout: TimeSpan.FromSeconds(120), progress: progress, cancellation: cancel.Token));
    }

    /// <summary>Ranks stay loaded between requests (what the engine and <c>xdit serve</c> use): the same
    /// request gives the same bits again, after a cancelled one too, and through the engine.</summary>
    [Test]
    public async Task ResidentRanksServeRequestAfterRequest()
    {
        var request = Request("tiny-sd3", 30) with { LatentsOnly = true };
        var pipeline = ParallelPipeline.Load(Folders["tiny-sd3"], new ParallelConfig { UseCfgParallel = true, UlyssesDegree = 2 });
        using var engine = new XDit.Serving.XDitEngine(pipeline);
        var first = await engine.GenerateAsync(request);
        Assert.That(Reference.RelativeL2(first.Latents, Single("tiny-sd3", 30).Latents), Is.LessThan(1e-5));

        using var cancel = new CancellationTokenSource();
        var cancelling = new Progress(p => { if (p.Stage == "denoising" && p.Step == 2) cancel.Cancel(); });
        Assert.That(async () => await engine.GenerateAsync(request with { Steps = 20 }, cancelling, cancel.Token),
            Throws.InstanceOf<OperationCanceledException>());

        var again = await engine.GenerateAsync(request);
        Assert.That(again.Latents, Is.EqualTo(first.Latents));
        Assert.That(pipeline.Generate(request with { LatentsOnly = false }).Images, Has.Count.EqualTo(2));
        Assert.That(() => pipeline.Generate(request with { GuidanceScale = 1 }), Throws.InstanceOf<XDitException>().With.Message.Contains("guidance"));
        Assert.That(() => pipeline.Generate(request with { Height = 100 }), Throws.InstanceOf<XDitException>().With.Message.Contains("100"));
        Assert.That(pipeline.Generate(request).Latents, Is.EqualTo(first.Latents), "a rejected request leaves the ranks usable");
    }

    /// <summary>The failure reaches the ranks waiting in sub-groups (Ulysses, Ring) at once: the run ends
    /// long before the communicator's timeout.</summary>
    [Test]
    public void AFailingRankFailsEveryRankWithItsName()
    {
        var config = new ParallelConfig { UlyssesDegree = 2, RingDegree = 2 };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(config.WorldSize, world =>
        {
            var mesh = ProcessMesh.Create(world, config);
            using var context = Contexts.Cpu(threads: 1);
            using var pipeline = PipelineLoader.Load(Folders["tiny-pixart"], context);
            var progress = new Progress(p =>
            {
                if (world.Rank == 3 && p.Stage == "denoising" && p.Step == 2) throw new InvalidOperationException("injected fault");
            });
            return pipeline.Generate(Request("tiny-pixart", 30) with { LatentsOnly = true }, mesh, progress);
        }, TimeSpan.FromSeconds(120)))!;
        Assert.That(error.Message, Does.Contain("rank 3 failed: injected fault"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "the other ranks waited for the timeout");
    }

    sealed class Progress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
