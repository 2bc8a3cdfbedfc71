using System.Text.Json;
using XDit.Cli;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The FLOP counter behind the throughput figures, and <c>xdit bench</c>'s report.</summary>
[TestFixture]
public class BenchTests
{
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
            var root = report.RootElement;
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
}
