using XDit.Models.PixArt;
using XDit.Ops;
using XDit.Parallel;
using XDit.Pipelines;
using XDit.Schedulers;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>
/// PipeFusion on in-process ranks (the tiny PixArt, SD3 and Flux, f32, 8 transformer blocks each — Flux's
/// 4 double-stream and 4 single-stream): 256² images, so the latent is 16 token rows and 2 and 4 patches
/// are real bands. With every step a warmup step it must give the single-rank latents; with fewer it
/// must equal a sequential re-statement of the stale key/value algorithm written here (for PixArt down
/// to the block arithmetic, for SD3 and Flux around the models' own blocks with a buffer of the test's),
/// and stay close to the exact result.
/// </summary>
[TestFixture]
public class PipeFusionTests
{
    static readonly string[] Families = ["tiny-pixart", "tiny-sd3", "tiny-flux"];
    readonly Dictionary<string, string> _folders = [];

    [OneTimeSetUp]
    public void WriteModels()
    {
        foreach (var family in Families)
        {
            var folder = Directory.CreateTempSubdirectory($"xdit-pipefusion-{family}").FullName;
            Architectures.WriteRandomFolder(family, folder, seed: 11, DType.F32);
            _folders[family] = folder;
        }
        // SD3.5-medium's layout at tiny size: q/k RMS norms and dual-attention blocks (an image-only second attention).
        var sd35 = SD3Architecture.Get("tiny-sd3");
        var transformer = (System.Text.Json.Nodes.JsonObject)sd35.Transformer.DeepClone();
        transformer["dual_attention_layers"] = new System.Text.Json.Nodes.JsonArray(0, 1, 2, 3);
        transformer["qk_norm"] = "rms_norm";
        _folders["tiny-sd3.5"] = Directory.CreateTempSubdirectory("xdit-pipefusion-tiny-sd3.5").FullName;
        (sd35 with { Transformer = transformer }).WriteRandomFolder(_folders["tiny-sd3.5"], seed: 11, DType.F32);
    }

    [OneTimeTearDown]
    public void DeleteModels()
    {
        foreach (var folder in _folders.Values) Directory.Delete(folder, recursive: true);
    }

    static GenerationRequest Request(string family, ulong seed = 9, int steps = 4) => new()
    {
        Prompts = ["a red fox", "a blue whale"], NegativePrompt = family == "tiny-flux" ? "" : "blurry", Height = 256, Width = 256, Steps = steps,
        GuidanceScale = family == "tiny-flux" ? 3.5 : 4.5, Seed = seed, MaxSequenceLength = 30, UseResolutionBinning = false,
    };

    GenerationResult SingleRank(string family, GenerationRequest request)
    {
        using var context = Contexts.Cpu();
        using var pipeline = PipelineLoader.Load(_folders[family], context);
        return pipeline.Generate(request);
    }

    /// <summary>Stages × CFG × data parallel × Ulysses × Ring on at most 8 ranks, with uneven stage splits,
    /// stages that cross Flux's double/single boundary, more or fewer patches than stages, and bands whose
    /// tokens the sequence degree does not divide (3 bands of 96, 96 and 64 tokens over ring 3).</summary>
    static IEnumerable<TestCaseData> WarmupMeshes()
    {
        foreach (var family in Families)
        {
            var cfg = family != "tiny-flux";
            yield return new TestCaseData(family, 2, 2, 1, false, 1, 1, null);
            yield return new TestCaseData(family, 4, 4, 1, false, 1, 1, null);
            yield return new TestCaseData(family, 3, 2, 1, false, 1, 1, null);
            yield return new TestCaseData(family, 2, 4, 2, false, 1, 1, null);
            yield return new TestCaseData(family, 2, 2, 1, false, 1, 1, new[] { 6, 2 });
            yield return new TestCaseData(family, 2, 2, 1, false, 2, 1, null);
            yield return new TestCaseData(family, 2, 3, 1, false, 1, 3, null);
            yield return new TestCaseData(family, 2, 4, 1, false, 2, 2, null);
            yield return new TestCaseData(family, 2, 2, 2, false, 1, 2, null);
            if (!cfg) continue;
            yield return new TestCaseData(family, 2, 2, 1, true, 1, 1, null);
            yield return new TestCaseData(family, 4, 2, 1, true, 1, 1, null);
            yield return new TestCaseData(family, 2, 3, 2, true, 1, 1, null);
            yield return new TestCaseData(family, 2, 2, 1, true, 2, 1, null);
        }
    }

    /// <summary>Warmup through every step: the stages split the blocks and nothing is stale, so every mesh
    /// gives the single-rank latents.</summary>
    [TestCaseSource(nameof(WarmupMeshes))]
    public void FullWarmupGivesTheSingleRankLatents(string family, int stages, int patches, int dataParallel, bool cfg, int ulysses, int ring,
        int[]? layers)
    {
        var request = Request(family, steps: 2);
        var config = new ParallelConfig
        {
            PipeFusionDegree = stages, NumPipelinePatch = patches, WarmupSteps = request.Steps, DataParallelDegree = dataParallel,
            UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring, LayersPerStage = layers,
        };
        var expected = SingleRank(family, request);
        var parallel = ParallelGeneration.Run(_folders[family], request, config, timeout: TimeSpan.FromSeconds(60));
        var error = Reference.RelativeL2(parallel.Latents, expected.Latents);
        TestContext.Out.WriteLine($"{family} {config}: relative L2 {error:E2}");
        Assert.That(error, Is.LessThan(1e-5));
        Assert.That(parallel.Images, Has.Count.EqualTo(2));
    }

    /// <summary>SD3.5's dual-attention blocks (their image-only attention keeps its own buffer under
    /// PipeFusion) on PipeFusion, PipeFusion × Ulysses, and sequence parallelism alone with the text split
    /// with the image (31 T5 tokens: 108 text tokens over 2 and 4 ranks) or replicated (30: 107).</summary>
    [TestCase(2, 1, 1, 30)]
    [TestCase(2, 2, 1, 30)]
    [TestCase(1, 2, 2, 31)]
    [TestCase(1, 2, 1, 31)]
    [TestCase(1, 1, 2, 30)]
    public void DualAttentionBlocksGiveTheSingleRankLatents(int stages, int ulysses, int ring, int textLength)
    {
        var request = Request("tiny-sd3", steps: 2) with { MaxSequenceLength = textLength };
        var config = new ParallelConfig { PipeFusionDegree = stages, WarmupSteps = 2, UlyssesDegree = ulysses, RingDegree = ring };
        var expected = SingleRank("tiny-sd3.5", request);
        var parallel = ParallelGeneration.Run(_folders["tiny-sd3.5"], request, config, timeout: TimeSpan.FromSeconds(60));
        var error = Reference.RelativeL2(parallel.Latents, expected.Latents);
        TestContext.Out.WriteLine($"tiny SD3.5 {config}, {textLength} T5 tokens: relative L2 {error:E2}");
        Assert.That(error, Is.LessThan(1e-5));
    }

    /// <summary>One warmup step, then stale keys and values: the pipeline equals the sequential simulation,
    /// and its distance to the exact latents is under a tenth of the distance between two seeds. 12 steps,
    /// as real runs take many: at 4 flow-matching steps the tiny random SD3 moves so far per step that keys
    /// one step stale put it 14 % off the exact latents (measured; the control is 86 %).</summary>
    const int StaleSteps = 12;

    [TestCase("tiny-pixart", 2, 2, 1, false, 1, 1)]
    [TestCase("tiny-pixart", 2, 4, 1, false, 1, 1)]
    [TestCase("tiny-pixart", 4, 4, 1, false, 1, 1)]
    [TestCase("tiny-pixart", 4, 2, 1, false, 1, 1)]
    [TestCase("tiny-pixart", 2, 4, 2, true, 1, 1)]
    [TestCase("tiny-pixart", 2, 3, 1, false, 2, 2)]
    [TestCase("tiny-sd3", 2, 4, 1, false, 1, 1)]
    [TestCase("tiny-sd3", 4, 2, 1, true, 1, 1)]
    [TestCase("tiny-sd3", 2, 3, 1, true, 1, 3)]
    [TestCase("tiny-flux", 2, 4, 1, false, 1, 1)]
    [TestCase("tiny-flux", 3, 2, 2, false, 1, 1)]
    [TestCase("tiny-flux", 2, 3, 1, false, 4, 1)]
    public void StaleKeysAndValuesFollowTheAlgorithm(string family, int stages, int patches, int dataParallel, bool cfg, int ulysses, int ring)
    {
        var request = Request(family, steps: StaleSteps);
        var config = new ParallelConfig
        {
            PipeFusionDegree = stages, NumPipelinePatch = patches, WarmupSteps = 1, DataParallelDegree = dataParallel, UseCfgParallel = cfg,
            UlyssesDegree = ulysses, RingDegree = ring,
        };
        var parallel = ParallelGeneration.Run(_folders[family], request, config, timeout: TimeSpan.FromSeconds(60));
        var simulated = family switch
        {
            "tiny-pixart" => SimulatePixArt(request, warmupSteps: 1, patches),
            "tiny-sd3" => SimulateSD3(request, warmupSteps: 1, patches),
            _ => SimulateFlux(request, warmupSteps: 1, patches),
        };
        var algorithmError = Reference.RelativeL2(parallel.Latents, simulated);
        var exact = SingleRank(family, request);
        var control = Reference.RelativeL2(SingleRank(family, Request(family, seed: 10, steps: StaleSteps)).Latents, exact.Latents);
        var staleness = Reference.RelativeL2(parallel.Latents, exact.Latents);
        TestContext.Out.WriteLine($"{family} {config}: vs simulation {algorithmError:E2}; vs exact {staleness:E3} (control {control:E3}); " +
                                  $"image PSNR vs exact {Psnr(parallel.Images[0], exact.Images[0]):F1} dB");
        Assert.That(algorithmError, Is.LessThan(1e-5));
        Assert.That(staleness, Is.GreaterThan(0), "with stale keys and values the result cannot be exact");
        Assert.That(staleness, Is.LessThan(0.1 * control));
    }

    /// <summary>5 patches of 16 token rows round to bands of 4 rows, so 4 bands: the generation says so and
    /// carries on, as xDiT does.</summary>
    [Test]
    public void FewerBandsThanAskedAreReported()
    {
        var request = Request("tiny-pixart", steps: 2) with { LatentsOnly = true };
        var config = new ParallelConfig { PipeFusionDegree = 2, NumPipelinePatch = 5, WarmupSteps = 1 };
        var result = ParallelGeneration.Run(_folders["tiny-pixart"], request, config, timeout: TimeSpan.FromSeconds(60));
        Assert.That(result.Warnings, Has.Count.EqualTo(1));
        Assert.That(result.Warnings[0], Does.Contain("make 4 bands of 4, 4, 4, 4 rows"));
    }

    /// <summary>A patch step moves each band's activations once per stage boundary, not the whole sequence,
    /// and only as point-to-point messages of their own size: 2 stages, 2 bands of 128 tokens, 1 warmup step
    /// then 1 patch step. Stage 0 sends the whole hidden states, then each band's; stage 1 sends the warmup
    /// step's new latent back, and nothing of the last step (nobody embeds those rows again).</summary>
    [Test]
    public void PatchStepsMoveOnlyTheirBandsActivations()
    {
        var config = new ParallelConfig { PipeFusionDegree = 2, NumPipelinePatch = 2, WarmupSteps = 1 };
        var request = Request("tiny-pixart", steps: 2) with { LatentsOnly = true };
        var volumes = InProcessWorld.Run(config.WorldSize, world =>
        {
            using var mesh = ProcessMesh.Create(world, config);
            using var context = Contexts.Cpu(threads: 1);
            using var pipeline = PipelineLoader.Load(_folders["tiny-pixart"], context);
            var before = CommunicationCounter.Snapshot();
            pipeline.Generate(request, mesh);
            return CommunicationCounter.Difference(CommunicationCounter.Snapshot(), before);
        });
        // Hidden rows: 2 images × both guidance halves; 64 channels; the latent is 2 × 4 × 32 × 32.
        long Hidden(long tokens) => 4 * tokens * 64;
        long latent = 2 * 4 * 32 * 32, f32 = 4;
        Assert.That(volumes[0]["send"], Is.EqualTo(new CollectiveVolume(3, (Hidden(256) + 2 * Hidden(128)) * f32)));
        Assert.That(volumes[1]["send"], Is.EqualTo(new CollectiveVolume(1, latent * f32)));
        Assert.That(volumes.SelectMany(v => v.Keys), Has.No.Member("shift"));
    }

    /// <summary>Resident PipeFusion ranks (what the engine and <c>xdit serve</c> keep): a request cancelled
    /// mid-pipeline stops every stage, and the next request gives the same bits as the first, so nothing
    /// of the cancelled one (buffers, scheduler history, messages in flight) is left behind.</summary>
    [Test]
    public async Task ResidentStagesSurviveACancelledRequest()
    {
        var request = Request("tiny-sd3", steps: 3) with { LatentsOnly = true };
        var config = new ParallelConfig { PipeFusionDegree = 2, NumPipelinePatch = 2, WarmupSteps = 1, UseCfgParallel = true };
        using var engine = new XDit.Serving.XDitEngine(ParallelPipeline.Load(_folders["tiny-sd3"], config));
        var first = await engine.GenerateAsync(request);

        using var cancel = new CancellationTokenSource();
        var cancelling = new Progress(p => { if (p.Stage == "denoising" && p.Step == 3) cancel.Cancel(); });
        Assert.That(async () => await engine.GenerateAsync(request with { Steps = 20 }, cancelling, cancel.Token),
            Throws.InstanceOf<OperationCanceledException>());
        Assert.That((await engine.GenerateAsync(request)).Latents, Is.EqualTo(first.Latents));
    }

    /// <summary>A stage that fails mid-pipeline fails every stage at once, with its name, long before the
    /// communicator's timeout.</summary>
    [Test]
    public void AFailingStageFailsEveryStage()
    {
        var config = new ParallelConfig { PipeFusionDegree = 4, NumPipelinePatch = 2, WarmupSteps = 1 };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(config.WorldSize, world =>
        {
            using var mesh = ProcessMesh.Create(world, config);
            using var context = Contexts.Cpu(threads: 1);
            using var pipeline = PipelineLoader.Load(_folders["tiny-flux"], context);
            var progress = new Progress(p =>
            {
                if (world.Rank == 2 && p.Stage == "denoising" && p.Step == 2) throw new InvalidOperationException("injected fault");
            });
            return pipeline.Generate(Request("tiny-flux", steps: 3) with { LatentsOnly = true }, mesh, progress);
        }, TimeSpan.FromSeconds(120)))!;
        Assert.That(error.Message, Does.Contain("rank 2 failed: injected fault"));
        Assert.That(clock.Elapsed, Is.LessThan(TimeSpan.FromSeconds(60)), "the other stages waited for the timeout");
    }

    sealed class Progress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    [Test]
    public void InvalidOptionsAreRejectedBeforeLoading()
    {
        var folder = _folders["tiny-pixart"];
        var request = Request("tiny-pixart");
        XditStatusOf(() => ParallelGeneration.Validate(folder, request, new ParallelConfig { PipeFusionDegree = 9 }), "transformer block per stage");
        XditStatusOf(() => ParallelGeneration.Validate(folder, request, new ParallelConfig { PipeFusionDegree = 2, WarmupSteps = 0 }), "warmup_steps");
        XditStatusOf(() => ParallelGeneration.Validate(folder, request, new ParallelConfig { PipeFusionDegree = 2, LayersPerStage = [5, 2] }), "add up to");
        XditStatusOf(() => ParallelGeneration.Validate(folder, request, new ParallelConfig { PipeFusionDegree = 2, UlyssesDegree = 3 }), "ulysses_degree 3 must divide");
        XditStatusOf(() => ParallelGeneration.Validate(folder, request, new ParallelConfig { PipeFusionDegree = 2, NumPipelinePatch = -1 }), "num_pipeline_patch");
    }

    static void XditStatusOf(Action action, string message) =>
        Assert.That(() => action(), Throws.TypeOf<XDitException>().With.Message.Contains(message));

    /// <summary>xDiT's cut: bands of ⌈rows / patches⌉ token rows, the last the remainder.</summary>
    static List<(long Start, long Rows)> Bands(long gridRows, int patches)
    {
        var bandRows = (gridRows + patches - 1) / patches;
        var bands = new List<(long Start, long Rows)>();
        for (long r = 0; r < gridRows; r += bandRows) bands.Add((r, Math.Min(bandRows, gridRows - r)));
        return bands;
    }

    /// <summary>The simulations' loop: for each step, <paramref name="stepAt"/>(step) conditions the model,
    /// then the whole latent (a warmup step) or each band top to bottom is predicted and each band's own
    /// scheduler (made by <paramref name="scheduler"/>) steps its rows; <paramref name="rowsOf"/> views a
    /// tensor's token rows. Returns the final latent.</summary>
    static Tensor Sequential(int steps, int warmupSteps, long gridRows, int patches, Tensor latents, Func<IScheduler> scheduler,
        Func<Tensor, long, long, Tensor> rowsOf, Func<int, IReadOnlyList<double>, Func<long, long, Tensor>> stepAt)
    {
        var bands = Bands(gridRows, patches);
        var schedulers = bands.Select(_ => scheduler()).ToList();
        try
        {
            for (int step = 0; step < steps; step++)
            {
                var predict = stepAt(step, schedulers[0].Timesteps);
                foreach (var (start, rows) in step < warmupSteps ? [(0L, gridRows)] : bands)
                {
                    using var bandScope = new TensorScope();
                    StepBands(schedulers, bands, step, predict(start, rows), latents, start, rows, rowsOf);
                }
            }
            return latents;
        }
        finally
        {
            foreach (var s in schedulers) s.Dispose();
        }
    }

    /// <summary>Steps every band inside tokens rows [start, start + rows) with its own scheduler;
    /// <paramref name="rowsOf"/> views a tensor's token rows.</summary>
    static void StepBands(IReadOnlyList<IScheduler> schedulers, List<(long Start, long Rows)> bands, int step, Tensor noise, Tensor latents,
        long start, long rows, Func<Tensor, long, long, Tensor> rowsOf)
    {
        for (int b = 0; b < bands.Count; b++)
        {
            var (bandStart, bandRows) = bands[b];
            if (bandStart < start || bandStart >= start + rows) continue;
            var sample = rowsOf(latents, bandStart, bandRows);
            var next = schedulers[b].Step(rowsOf(noise, bandStart - start, bandRows).Contiguous(), step, sample.Contiguous());
            Elementwise.Copy(next, sample);
        }
    }

    /// <summary>
    /// PipeFusion's result written as one sequential loop: for each step, the whole latent (warmup) or each
    /// band top to bottom runs through every block; block l keeps a host buffer of the whole sequence's
    /// keys and values, overwrites the band's tokens with fresh ones and attends the band's queries to all
    /// of it; each band keeps its own scheduler, stepped on its rows.
    /// </summary>
    float[] SimulatePixArt(GenerationRequest request, int warmupSteps, int patches)
    {
        using var context = Contexts.Cpu();
        using var pipeline = PixArtPipeline.Load(_folders["tiny-pixart"], context);
        using var scope = new TensorScope();
        var transformer = pipeline.Transformer;
        var config = transformer.Config;
        var batch = request.BatchSize;
        var texts = Enumerable.Repeat(request.NegativePrompt, batch).Concat(request.PromptPerImage()).ToList();
        var (caption, mask) = pipeline.EncodeText(texts, request.MaxSequenceLength);
        var latents = pipeline.InitialLatents(request).Clone();
        long height = latents.Size(2), width = latents.Size(3), p = config.PatchSize;
        long gridRows = height / p, gridWidth = width / p, sequence = gridRows * gridWidth, dim = config.InnerDim;
        var keys = new float[config.NumLayers][];
        var values = new float[config.NumLayers][];
        Tensor Rows(Tensor t, long row, long count) => t.Narrow(2, row * p, count * p);
        return Sequential(request.Steps, warmupSteps, gridRows, patches, latents, Scheduler, Rows, (step, timesteps) =>
        {
            var conditioning = transformer.Condition(Enumerable.Repeat((float)timesteps[step], 2 * batch).ToArray(), caption, mask);
            return (start, rows) =>
            {
                var band = Rows(latents, start, rows);
                var x = transformer.Embed(Layout.Cat(0, band, band), start, gridRows);
                for (int l = 0; l < config.NumLayers; l++)
                    x = Block(transformer.Blocks[l], x, conditioning, ref keys[l], ref values[l], start * gridWidth, sequence);
                var output = transformer.Output(x, conditioning, rows * p, width).Narrow(1, 0, config.InChannels);
                return Elementwise.Lerp(output.Narrow(0, 0, batch), output.Narrow(0, batch, batch), request.GuidanceScale);
            };
        }).ToArray<float>();

        IScheduler Scheduler()
        {
            var scheduler = DpmSolverMultistepScheduler.FromConfig(SchedulerConfig("tiny-pixart"));
            scheduler.SetTimesteps(request.Steps);
            return scheduler;
        }

        Tensor Block(PixArtBlock block, Tensor x, PixArtTransformer2DModel.Conditioning c, ref float[] k, ref float[] v, long tokenStart, long sequence)
        {
            long rows = x.Size(0), tokens = x.Size(1), heads = config.NumAttentionHeads, headDim = config.AttentionHeadDim;
            var modulation = Elementwise.Add(block.ScaleShiftTable.Value.Unsqueeze(0), c.Timestep.View(rows, 6, dim));
            Tensor Row(int i) => modulation.Narrow(1, i, 1);
            var normed = Normalization.LayerNorm(x, null, null, config.NormEps, Row(1), Row(0));
            var attention = block.SelfAttention;
            var q = attention.ToQ.Forward(normed).View(rows, tokens, heads, headDim);
            var fresh = (K: attention.ToK.Forward(normed).ToArray<float>(), V: attention.ToV.Forward(normed).ToArray<float>());
            // Host buffers [B, sequence, H·D]: the band's rows replaced, the rest as the last pass left them.
            k ??= new float[rows * sequence * dim];
            v ??= new float[rows * sequence * dim];
            for (long r = 0; r < rows; r++)
            {
                Array.Copy(fresh.K, r * tokens * dim, k, (r * sequence + tokenStart) * dim, tokens * dim);
                Array.Copy(fresh.V, r * tokens * dim, v, (r * sequence + tokenStart) * dim, tokens * dim);
            }
            var allKeys = Tensor.FromArray(x.Context, k, rows, sequence, heads, headDim);
            var allValues = Tensor.FromArray(x.Context, v, rows, sequence, heads, headDim);
            var attended = attention.ToOut.Forward(Attention.ScaledDotProduct(q, allKeys, allValues).View(rows, tokens, dim));
            x = Elementwise.AddMul(x, Row(2), attended);
            x = Elementwise.Add(x, block.CrossAttention.Forward(x, c.Caption, c.CaptionMask));
            normed = Normalization.LayerNorm(x, null, null, config.NormEps, Row(4), Row(3));
            return Elementwise.AddMul(x, Row(5), block.FeedForward.Forward(normed));
        }
    }

    System.Text.Json.JsonElement SchedulerConfig(string family) => DiffusersFolder.Open(_folders[family]).Config("scheduler").Root;

    /// <summary>SD3 through the same loop around its own blocks: the step's first band carries the text
    /// (behind the image), later bands attend to the text keys and values it left.</summary>
    float[] SimulateSD3(GenerationRequest request, int warmupSteps, int patches)
    {
        using var context = Contexts.Cpu();
        using var pipeline = SD3Pipeline.Load(_folders["tiny-sd3"], context);
        using var scope = new TensorScope();
        var transformer = pipeline.Transformer;
        var batch = request.BatchSize;
        var texts = Enumerable.Repeat(request.NegativePrompt, batch).Concat(request.PromptPerImage()).ToList();
        var (text, pooled) = pipeline.EncodeText(texts, request.MaxSequenceLength);
        var factor = PipelineLoader.VaeScaleFactor(_folders["tiny-sd3"]);
        var latents = RequestNoise.Draw(context, request, DType.F32, transformer.Config.InChannels, request.Height / factor, request.Width / factor);
        long p = transformer.Config.PatchSize, gridRows = latents.Size(2) / p, gridWidth = latents.Size(3) / p;
        using var buffers = new StaleJointBuffers(text.Size(1), textFirst: false);
        Tensor Rows(Tensor t, long row, long count) => t.Narrow(2, row * p, count * p);
        IScheduler Scheduler()
        {
            var scheduler = FlowMatchEulerScheduler.FromConfig(SchedulerConfig("tiny-sd3"));
            scheduler.SetTimesteps(request.Steps);
            return scheduler;
        }
        return Sequential(request.Steps, warmupSteps, gridRows, patches, latents, Scheduler, Rows, (step, timesteps) =>
        {
            var conditioning = transformer.Condition(Enumerable.Repeat((float)timesteps[step], 2 * batch).ToArray(), text, pooled);
            return (start, rows) =>
            {
                var band = Rows(latents, start, rows);
                var image = transformer.PatchEmbedding.Forward(Layout.Cat(0, band, band), start, gridRows);
                var carriesText = start == 0;
                (image, _) = transformer.RunBlocks(image, carriesText ? conditioning.Context : null, conditioning, 0, transformer.Blocks.Count,
                    layer => buffers.For(layer, start * gridWidth, rows * gridWidth, carriesText));
                var output = transformer.Output(image, conditioning, rows * p, latents.Size(3));
                return Elementwise.Lerp(output.Narrow(0, 0, batch), output.Narrow(0, batch, batch), request.GuidanceScale);
            };
        }).ToArray<float>();
    }

    /// <summary>Flux through the same loop around its own blocks: the step's first band carries the text
    /// (in front of the image) through the double- and single-stream blocks; every band attends with its
    /// own rows of the rotary tables.</summary>
    float[] SimulateFlux(GenerationRequest request, int warmupSteps, int patches)
    {
        using var context = Contexts.Cpu();
        using var pipeline = FluxPipeline.Load(_folders["tiny-flux"], context);
        using var scope = new TensorScope();
        var transformer = pipeline.Transformer;
        var batch = request.BatchSize;
        var (text, pooled) = pipeline.EncodeText(request.PromptPerImage(), request.MaxSequenceLength);
        var (latents, height, width) = pipeline.InitialLatents(request);
        long gridRows = height / 2, gridWidth = width / 2, textTokens = text.Size(1);
        var guidance = Enumerable.Repeat((float)request.GuidanceScale, batch).ToArray();
        var imageIds = Models.Flux.FluxPositionIds.Image((int)gridRows, (int)gridWidth);
        var textIds = Models.Flux.FluxPositionIds.Text((int)textTokens);
        using var buffers = new StaleJointBuffers(textTokens, textFirst: true);
        Tensor Rows(Tensor t, long row, long count) => t.Narrow(1, row * gridWidth, count * gridWidth);
        IScheduler Scheduler()
        {
            var scheduler = FlowMatchEulerScheduler.FromConfig(SchedulerConfig("tiny-flux"));
            FluxPipeline.SetTimesteps(scheduler, request.Steps, (int)latents.Size(1));
            return scheduler;
        }
        var final = Sequential(request.Steps, warmupSteps, gridRows, patches, latents, Scheduler, Rows, (step, timesteps) =>
        {
            var sigmas = Enumerable.Repeat((float)(timesteps[step] / 1000), batch).ToArray();
            var conditioning = transformer.Condition(text, pooled, sigmas, guidance, imageIds, textIds);
            return (start, rows) =>
            {
                var image = transformer.XEmbedder.Forward(Rows(latents, start, rows));
                var carriesText = start == 0;
                var local = carriesText ? textTokens : 0;
                Tensor TableRows(Tensor table) => Layout.Cat(0, table.Narrow(0, 0, local), table.Narrow(0, textTokens + start * gridWidth, rows * gridWidth));
                var x = transformer.RunBlocks(carriesText ? Layout.Cat(1, conditioning.Text, image) : image, local, conditioning.Activated,
                    TableRows(conditioning.Cos), TableRows(conditioning.Sin), 0, transformer.Layers,
                    layer => buffers.For(layer, start * gridWidth, rows * gridWidth, carriesText));
                return transformer.Output(x, local, conditioning.Activated);
            };
        });
        return Layout.FluxUnpack(final, (int)height, (int)width).ToArray<float>();
    }

    /// <summary>
    /// The test's own stale store for joint attention: per layer, the image keys and values of the whole
    /// latent (band rows overwritten as bands pass) and the text's from the step's first band, joined by
    /// concatenation in the model's order at every attention.
    /// </summary>
    sealed class StaleJointBuffers(long textTokens, bool textFirst) : IDisposable
    {
        readonly Dictionary<int, Tensor?[]> _layers = []; // image keys, image values, text keys, text values

        public IJointSequenceAttention For(int layer, long tokenStart, long tokens, bool carriesText)
        {
            if (!_layers.TryGetValue(layer, out var state)) _layers[layer] = state = new Tensor?[4];
            return new Layer(state, textTokens, textFirst, tokenStart, tokens, carriesText);
        }

        public void Dispose()
        {
            foreach (var tensor in _layers.Values.SelectMany(t => t)) tensor?.Dispose();
        }

        sealed class Layer(Tensor?[] state, long textTokens, bool textFirst, long tokenStart, long tokens, bool carriesText) : IJointSequenceAttention
        {
            public bool CarriesText => carriesText;

            public Tensor Attend(Tensor q, Tensor k, Tensor v)
            {
                var text = carriesText ? textTokens : 0;
                var imageAt = textFirst ? text : 0;
                Keep(0, k.Narrow(1, imageAt, tokens));
                Keep(1, v.Narrow(1, imageAt, tokens));
                if (carriesText)
                {
                    var textAt = textFirst ? 0 : tokens;
                    for (int i = 2; i < 4; i++) state[i]?.Dispose();
                    state[2] = k.Narrow(1, textAt, text).Clone().MoveToOuterScope(null);
                    state[3] = v.Narrow(1, textAt, text).Clone().MoveToOuterScope(null);
                }
                Tensor Joined(Tensor image, Tensor textPart) => textFirst ? Layout.Cat(1, textPart, image) : Layout.Cat(1, image, textPart);
                return Attention.ScaledDotProduct(q, Joined(state[0]!, state[2]!), Joined(state[1]!, state[3]!));
            }

            void Keep(int slot, Tensor fresh)
            {
                if (state[slot] is null) state[slot] = fresh.Clone().MoveToOuterScope(null);
                else Elementwise.Copy(fresh, state[slot]!.Narrow(1, tokenStart, tokens));
            }

            public Tensor AttendImage(Tensor q, Tensor k, Tensor v) =>
                throw new NotSupportedException("the tiny SD3 has no dual-attention blocks");
        }
    }

    static double Psnr(byte[] a, byte[] b)
    {
        var mse = a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Average();
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(255.0 * 255.0 / mse);
    }
}
