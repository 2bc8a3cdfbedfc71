using System.Text.Json;
using XDit.Cli;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The FLOP counter behind the throughput figures, and <c>xdit bench</c>'s report.</summary>
[TestFixture]
public class BenchTests
{
    /// <summary><c>xdit bench --blocks</c>: TFLOP/s from the block's FLOPs (28·S·C² + 4·T·C² + 4·S²·C + 4·S·T·C for
    /// PixArt-Σ, written out here) and the median time, and the peer's case file: the block's weights under their
    /// checkpoint names, its inputs and the output those inputs give.</summary>
    [Test]
    public void BlockBenchTimesTheBlockAndWritesThePeersCase()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-block-cases").FullName;
        try
        {
            var json = Path.Combine(folder, "blocks.json");
            var output = new StringWriter();
            var options = new CommandLine(["--blocks", "--block", "pixart-sigma", "--tokens", "64", "--runs", "1", "--write_cases", folder, "--json", json]);
            Assert.That(BenchCommand.Run(options, output), Is.Zero, output.ToString());
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var row = report.RootElement.GetProperty("blocks").EnumerateArray().Single();
            double s = 64, c = 1152, t = 300;
            var flops = 28 * s * c * c + 4 * t * c * c + 4 * s * s * c + 4 * s * t * c;
            Assert.That(row.GetProperty("tflops").GetDouble() * row.GetProperty("median_ms").GetDouble() * 1e9, Is.EqualTo(flops).Within(1e-6).Percent);

            using var file = Weights.SafetensorsFile.Open(Path.Combine(folder, "pixart_sigma_block_64.safetensors"));
            Assert.That(file.Names, Does.Contain("input.x").And.Contain("input.caption").And.Contain("attn2.to_k.weight").And.Contain("output"));
            using var context = Contexts.Cpu();
            using var again = Pipelines.BlockBenchmarkCase.Create("pixart-sigma", 64, context, DType.F32);
            using var expected = again.Forward();
            using var written = file.Load("output", context);
            Assert.That(written.ToArray<float>(), Is.EqualTo(expected.ToArray<float>()));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void FlopCounterCountsEachProductOnce()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        FlopCounter.Reset();
        MatMul.Gemm(Tensor.Zeros(context, DType.F32, 3, 5, 7), Tensor.Zeros(context, DType.F32, 11, 7));
        Assert.That(FlopCounter.Current, Is.EqualTo(2L * 3 * 5 * 11 * 7));
        FlopCounter.Reset();
        Attention.ScaledDotProduct(Tensor.Zeros(context, DType.F32, 2, 9, 3, 8), Tensor.Zeros(context, DType.F32, 2, 13, 3, 8),
            Tensor.Zeros(context, DType.F32, 2, 13, 3, 4));
        Assert.That(FlopCounter.Current, Is.EqualTo(2L * 2 * 3 * 9 * 13 * (8 + 4)));
        FlopCounter.Reset();
        Convolution.Conv2d(Tensor.Zeros(context, DType.F32, 1, 3, 10, 10), Tensor.Zeros(context, DType.F32, 5, 3, 3, 3), null, 1, 1);
        Assert.That(FlopCounter.Current, Is.EqualTo(2L * 5 * 10 * 10 * 3 * 3 * 3));
    }

    [Test]
    public void BenchReportsStagesAndThroughput()
    {
        var json = Path.Combine(Path.GetTempPath(), $"xdit-bench-{Guid.NewGuid():N}.json");
        try
        {
            var output = new StringWriter();
            Assert.That(BenchCommand.Run(new CommandLine(["--arch", "tiny-pixart", "--random_weights", "--runs", "2", "--warmup", "1",
                "--num_inference_steps", "2", "--json", json]), output), Is.Zero);
            Assert.That(output.ToString(), Does.Contain("| denoising step |").And.Contain("GFLOP/s"));
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var root = report.RootElement.GetProperty("meshes")[0];
            Assert.That(root.GetProperty("stages").GetProperty("denoising step").GetProperty("samples").GetInt32(), Is.EqualTo(4), "2 runs × 2 steps");
            Assert.That(root.GetProperty("stages").GetProperty("vae decode").GetProperty("samples").GetInt32(), Is.EqualTo(2), "warm-up excluded");
            // The tiny model's step is dominated by its 8 blocks: at least their self-attention projections.
            Assert.That(root.GetProperty("flops_per_step").GetInt64(), Is.GreaterThan(8L * 4 * 2 * 2 * 64 * 64 * 64));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void CompareReportsEachMeshWithItsCommunication()
    {
        var json = Path.Combine(Path.GetTempPath(), $"xdit-bench-{Guid.NewGuid():N}.json");
        try
        {
            var output = new StringWriter();
            Assert.That(BenchCommand.Run(new CommandLine(["--arch", "tiny-pixart", "--random_weights", "--runs", "1", "--warmup", "0",
                "--num_inference_steps", "2", "--compare", "1; cfg2 ; ulysses2xring2", "--json", json]), output), Is.Zero);
            Assert.That(output.ToString(), Does.Contain("| dp 1 × cfg 1 × ulysses 2 × ring 2 | 4 |"));
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var meshes = report.RootElement.GetProperty("meshes");
            Assert.That(meshes.GetArrayLength(), Is.EqualTo(3));
            Assert.That(meshes[0].GetProperty("communication_per_step").EnumerateObject().Count(), Is.Zero, "one rank sends nothing");
            Assert.That(meshes[1].GetProperty("communication_per_step").GetProperty("all_gather").GetProperty("calls").GetInt64(), Is.EqualTo(1),
                "CFG gathers the prediction once per step");
            var usp = meshes[2].GetProperty("communication_per_step");
            Assert.That(usp.GetProperty("all_to_all").GetProperty("calls").GetInt64(), Is.EqualTo(4 * 8), "q, k, v and the output in 8 blocks");
            Assert.That(usp.GetProperty("shift").GetProperty("calls").GetInt64(), Is.EqualTo(2 * 8), "keys and values once around a ring of 2");
            // Each of 4 ranks does a quarter of the image-token work; the caption's keys and values (30 tokens
            // against 64 image tokens here) are projected on every rank, as xDiT does.
            Assert.That(meshes[2].GetProperty("flops_per_step").GetInt64() * 2, Is.LessThan(meshes[0].GetProperty("flops_per_step").GetInt64()));
            // The scaling model's prediction sits next to every mesh once the one-rank step is known.
            Assert.That(meshes[2].GetProperty("predicted_step_ms_on_devices").GetDouble(), Is.GreaterThan(0));
            Assert.That(output.ToString(), Does.Contain("predicts with one device like this one per rank, over NVLink 4"));
        }
        finally
        {
            File.Delete(json);
        }
    }

    /// <summary>The HTTP throughput mode: every request of every level completes, and the reported rate is
    /// the completed images over the level's wall time.</summary>
    [Test]
    public void HttpModeReportsThroughputAndLatencyPerConcurrency()
    {
        var json = Path.Combine(Path.GetTempPath(), $"xdit-load-{Guid.NewGuid():N}.json");
        try
        {
            var output = new StringWriter();
            Assert.That(BenchCommand.Run(new CommandLine(["--arch", "tiny-pixart", "--random_weights", "--http", "--concurrency", "1,3",
                "--requests", "3", "--num_inference_steps", "1", "--height", "64", "--width", "64", "--json", json]), output), Is.Zero, output.ToString());
            Assert.That(output.ToString(), Does.Contain("| concurrency | completed | failed |"));
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var levels = report.RootElement.GetProperty("levels");
            Assert.That(levels.GetArrayLength(), Is.EqualTo(2));
            foreach (var level in levels.EnumerateArray())
            {
                Assert.That(level.GetProperty("completed").GetInt32(), Is.EqualTo(3));
                Assert.That(level.GetProperty("failed").GetInt32(), Is.Zero);
                Assert.That(level.GetProperty("images_per_s").GetDouble(),
                    Is.EqualTo(3 / level.GetProperty("seconds").GetDouble()).Within(1e-9));
                Assert.That(level.GetProperty("p99_ms").GetDouble(), Is.GreaterThanOrEqualTo(level.GetProperty("p50_ms").GetDouble()));
            }
        }
        finally
        {
            File.Delete(json);
        }
        Assert.That(Assert.Throws<UsageException>(() => BenchCommand.Run(new CommandLine(["--arch", "tiny-pixart", "--random_weights",
            "--concurrency", "2"]), TextWriter.Null))!.Message, Does.Contain("add --http"));
    }

    [Test]
    public void MeshSpecificationsParse()
    {
        Assert.That(BenchCommand.ParseMesh("dp2xcfg2xu2xr4"), Is.EqualTo(new Parallel.ParallelConfig
            { DataParallelDegree = 2, UseCfgParallel = true, UlyssesDegree = 2, RingDegree = 4 }));
        Assert.That(BenchCommand.ParseMesh("1"), Is.EqualTo(new Parallel.ParallelConfig()));
        Assert.That(BenchCommand.ParseMesh("u2xvae"), Is.EqualTo(new Parallel.ParallelConfig { UlyssesDegree = 2, UseParallelVae = true }));
        Assert.That(BenchCommand.ParseMesh("pp2xpatch4xwarmup2xu2"), Is.EqualTo(new Parallel.ParallelConfig
            { PipeFusionDegree = 2, NumPipelinePatch = 4, WarmupSteps = 2, UlyssesDegree = 2 }));
        Assert.That(Assert.Throws<UsageException>(() => BenchCommand.ParseMesh("tp2"))!.Message, Does.Contain("tp2"));
    }
}
