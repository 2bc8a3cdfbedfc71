using XDit.Ops;
using XDit.Parallel;
using XDit.Pipelines;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>
/// Captured graphs (<see cref="DeviceGraph"/>, <see cref="StepGraph"/>): on the CPU the recorded op calls,
/// which must behave as a CUDA graph does (nothing runs at capture, launches compute on the memory's
/// contents at that point, host uploads are replayed, the graph's memory stays its own), and whole
/// generations with every step after the second a replay, bit-identical to the eager run. The CUDA twins
/// are in the GPU category.
/// </summary>
[TestFixture]
public class GraphTests
{
    TinyModelFolders Folders = null!;

    [OneTimeSetUp]
    public void WriteModels() => Folders = new TinyModelFolders("graph", seed: 5, "tiny-pixart", "tiny-sd3", "tiny-flux");

    [OneTimeTearDown]
    public void DeleteModels() => Folders.Dispose();

    [Test]
    public void CapturedWorkRunsOnlyWhenLaunchedAndReadsTheInputsOfThatMoment()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.FromArray(context, new float[] { 1, 2, 3 }, 3);
        var y = Tensor.Zeros(context, DType.F32, 3);
        var (graph, _) = context.Capture(() =>
        {
            Elementwise.Affine(x, 2, 1, y);
            return 0;
        });
        using (graph)
        {
            Assert.That(y.ToArray<float>(), Is.EqualTo(new float[] { 0, 0, 0 }), "nothing runs while capturing");
            Assert.That(graph.NodeCount, Is.EqualTo(1));
            graph.Launch();
            Assert.That(y.ToArray<float>(), Is.EqualTo(new float[] { 3, 5, 7 }));
            x.CopyFrom<float>([10, 20, 30]);
            graph.Launch();
            Assert.That(y.ToArray<float>(), Is.EqualTo(new float[] { 21, 41, 61 }));
        }
    }

    [Test]
    public void HostDataUploadedDuringTheCaptureIsUploadedAgainAtEveryLaunch()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.FromArray(context, new float[] { 1, 2, 3 }, 3);
        var (graph, (table, sum)) = context.Capture(() =>
        {
            var t = Tensor.FromArray(context, new float[] { 100, 200, 300 }, 3);
            return (t, Elementwise.Add(x, t));
        });
        using (graph)
        {
            graph.Launch();
            Assert.That(sum.ToArray<float>(), Is.EqualTo(new float[] { 101, 202, 303 }));
            Elementwise.Fill(table, -1); // the graph's own memory, overwritten between launches
            graph.Launch();
            Assert.That(sum.ToArray<float>(), Is.EqualTo(new float[] { 101, 202, 303 }));
            Assert.That(graph.NodeCount, Is.EqualTo(2), "the upload and the add");
        }
    }

    [Test]
    public void WhatNeedsTheWorkToHaveRunIsRefusedWhileCapturing()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.FromArray(context, new float[] { 1, 2 }, 2);
        void Refused(string what, Action inCapture)
        {
            var e = Assert.Throws<XDitException>(() => context.Capture(() => { inCapture(); return 0; }), what)!;
            Assert.That(e.Status, Is.EqualTo(Native.XditStatus.Unsupported), what);
            Assert.That(e.Message, Does.Contain("while a graph is being captured"), what);
        }
        Refused("read back", () => Elementwise.Unary(UnaryOp.Neg, x).ToArray<float>());
        Refused("synchronize", context.Synchronize);
        Refused("mark", () => context.Mark());
        var nested = Assert.Throws<XDitException>(() => context.Capture(() => context.Capture(() => 0)))!;
        Assert.That(nested.Message, Does.Contain("already being captured"));
        // Every refused capture left capture mode: eager work runs again.
        Assert.That(Elementwise.Affine(x, 3).ToArray<float>(), Is.EqualTo(new float[] { 3, 6 }));
    }

    [Test]
    public void TheGraphsMemoryStaysItsOwnUntilTheGraphIsDisposed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        const long size = 12_345, other = 23_456; // sizes nothing else in this context allocates
        var x = Tensor.Zeros(context, DType.F32, size);
        var before = Tensor.Zeros(context, DType.F32, other); // allocated before the capture, freed during it
        var (graph, output) = context.Capture(() =>
        {
            using var temporary = Elementwise.Affine(x, 2, 1);
            Elementwise.Add(temporary, before.Narrow(0, 0, size), temporary);
            before.Dispose();
            return Elementwise.Affine(temporary, 3);
        });
        output.Dispose();
        var hits = context.AllocatorStats.CacheHitCount;
        using (var eager = Tensor.Empty(context, DType.F32, size))
            Assert.That(context.AllocatorStats.CacheHitCount, Is.EqualTo(hits), "the graph's freed blocks are not handed out");
        using (var eager = Tensor.Empty(context, DType.F32, other))
            Assert.That(context.AllocatorStats.CacheHitCount, Is.EqualTo(hits), "nor a block the graph reads that was freed while capturing");
        graph.Dispose();
        hits = context.AllocatorStats.CacheHitCount;
        using (var afterwards = Tensor.Empty(context, DType.F32, size))
            Assert.That(context.AllocatorStats.CacheHitCount, Is.EqualTo(hits + 1), "a released graph's blocks join the cache");
    }

    static GenerationRequest Request(string family) => new()
    {
        Prompts = ["a red fox", "a blue whale"], NegativePrompt = family == "tiny-flux" ? "" : "blurry",
        Height = 144, Width = 144, Steps = 4, GuidanceScale = family == "tiny-flux" ? 3.5 : 4.5, Seed = 3, MaxSequenceLength = 30,
    };

    /// <summary>Steps 3 and 4 replay step 2's graph with their own latents and timesteps: the latents and
    /// images are the eager run's, bit for bit.</summary>
    [TestCase("tiny-pixart")]
    [TestCase("tiny-sd3")]
    [TestCase("tiny-flux")]
    public void CapturedStepsGiveTheEagerGenerationBitForBit(string family)
    {
        using var context = Contexts.Cpu();
        using var pipeline = PipelineLoader.Load(Folders[family], context);
        var eager = pipeline.Generate(Request(family));
        var captured = pipeline.Generate(Request(family) with { UseGraph = true });
        Assert.That(captured.Latents, Is.EqualTo(eager.Latents));
        Assert.That(captured.Images, Is.EqualTo(eager.Images));
        var again = pipeline.Generate(Request(family) with { UseGraph = true, Seed = 4 });
        Assert.That(again.Latents, Is.EqualTo(pipeline.Generate(Request(family) with { Seed = 4 }).Latents), "a second generation captures its own step");
    }

    [Test]
    public void CfgParallelRanksCaptureTheirOwnSteps()
    {
        var config = new ParallelConfig { UseCfgParallel = true };
        var request = Request("tiny-pixart") with { LatentsOnly = true };
        var eager = ParallelGeneration.Run(Folders["tiny-pixart"], request, config, timeout: TimeSpan.FromSeconds(60));
        var captured = ParallelGeneration.Run(Folders["tiny-pixart"], request with { UseGraph = true }, config, timeout: TimeSpan.FromSeconds(60));
        Assert.That(captured.Latents, Is.EqualTo(eager.Latents));
    }

    [TestCase(2, 1)]
    [TestCase(1, 2)]
    public void MeshesThatCommunicateInsideTheStepAreRefused(int ulysses, int pipeFusion)
    {
        var config = new ParallelConfig { UlyssesDegree = ulysses, PipeFusionDegree = pipeFusion };
        var e = Assert.Throws<XDitException>(() =>
            ParallelGeneration.Run(Folders["tiny-pixart"], Request("tiny-pixart") with { UseGraph = true }, config, timeout: TimeSpan.FromSeconds(60)))!;
        Assert.That(e.Message, Does.Contain("--use_cuda_graph").And.Contain(pipeFusion > 1 ? "PipeFusion" : "sequence parallelism"));
    }

    [TestCase("tiny-pixart", DType.F32)]
    [TestCase("tiny-sd3", DType.F32)]
    [TestCase("tiny-flux", DType.F32)]
    [TestCase("tiny-pixart", DType.BF16)]
    [Category("GPU")]
    public void CapturedCudaStepsGiveTheEagerGenerationBitForBit(string family, DType dtype)
    {
        using var cuda = Contexts.CudaOrIgnore();
        using var pipeline = PipelineLoader.Load(Folders[family], cuda, dtype);
        var request = Request(family) with { LatentsOnly = true };
        var eager = pipeline.Generate(request);
        var captured = pipeline.Generate(request with { UseGraph = true });
        Assert.That(captured.Latents, Is.EqualTo(eager.Latents));
    }
}

/// <summary><c>xdit check --graph</c>, the GPU kit's captured-step stage, run here on the CPU.</summary>
[TestFixture]
public class GraphCheckTests
{
    [Test]
    public void CapturedStepsOfFluxPassOnCpuRanks()
    {
        var json = Path.GetTempFileName();
        try
        {
            var output = new StringWriter();
            var exit = XDit.Cli.GraphCheckCommand.Run(Device.Cpu, DType.F32, ["tiny-flux"], json, output);
            Assert.That(exit, Is.Zero, output.ToString());
            using var report = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            var cases = report.RootElement.GetProperty("cases").EnumerateArray().ToList();
            Assert.That(cases.Select(c => c.GetProperty("mesh").GetString()), Has.Some.Contains("dp 2").And.Some.Contains("dp 1"));
            foreach (var c in cases)
            {
                Assert.That(c.GetProperty("bit_identical").GetBoolean(), Is.True, c.ToString());
                Assert.That(c.GetProperty("replayed_step_ms").GetDouble(), Is.GreaterThan(0), c.ToString());
            }
            Assert.That(output.ToString(), Does.Contain("2 passed, 0 failed"));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void OnlyTheTinyArchitecturesAreChecked()
    {
        var output = new StringWriter();
        Assert.That(() => XDit.Cli.GraphCheckCommand.Run(Device.Cpu, DType.F32, ["pixart-sigma"], null, output),
            Throws.TypeOf<XDit.Cli.UsageException>().With.Message.Contains("tiny architectures"));
    }
}
