using System.Text.Json;
using XDit.Cli;
using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>
/// <c>xdit check --ops</c>, the GPU kit's operator check, run here with the CPU as the checked device (AVX2
/// tiles and OpenBLAS against the portable kernels), and its verdicts on cases made to fail: an element left
/// unwritten, a wrong result, an operator the device lacks.
/// </summary>
[TestFixture]
public class OpCheckTests
{
    /// <summary>Every case up to 5 GFLOP and 10M elements moved (the larger ones are for the GPU's bench stage), in
    /// f32 and bf16.</summary>
    [Test]
    public void EveryOperatorCaseAgreesWithThePortableKernels()
    {
        using var reference = DeviceContext.Create(Device.Cpu, new ContextOptions { CpuIsa = CpuIsa.Baseline, CpuGemm = CpuGemm.Builtin });
        using var context = Contexts.Cpu();
        var small = OpChecks.All.Select((c, i) => (Case: c, Seed: i + 1)).Where(c => c.Case.Flops < 5e9 && c.Case.Elements < 1e7).ToList();
        Assert.That(small, Has.Count.GreaterThan(30));
        foreach (var (c, seed) in small)
            foreach (var dtype in new[] { DType.F32, DType.BF16 })
            {
                var row = OpCheckCommand.Check(c, seed, dtype, reference, context, bench: false);
                Assert.That(row.Status, Is.EqualTo("ok"), $"{c.Op} {c.Shape} {dtype.Name()}: {row.Detail}");
            }
    }

    /// <summary>The same cases on a CUDA device against the CPU (skipped without one): no case may fail; the
    /// operators the CUDA backend does not have yet are listed as a warning.</summary>
    [Test]
    [Category("GPU")]
    public void EveryOperatorCaseOnCudaAgreesWithTheCpu()
    {
        using var context = Contexts.CudaOrIgnore();
        using var reference = Contexts.Cpu();
        var missing = new List<string>();
        foreach (var (c, seed) in OpChecks.All.Select((c, i) => (c, i + 1)))
            foreach (var dtype in new[] { DType.F32, DType.BF16 })
            {
                var row = OpCheckCommand.Check(c, seed, dtype, reference, context, bench: false);
                if (row.Status == "missing") missing.Add($"{c.Op} ({dtype.Name()})");
                else Assert.That(row.Status, Is.EqualTo("ok"), $"{c.Op} {c.Shape} {dtype.Name()}: {row.Detail}");
            }
        if (missing.Count > 0) Assert.Warn($"not on CUDA yet: {string.Join(", ", missing.Distinct())}");
    }

    /// <summary>The bench of a bandwidth-bound case reports GB/s from the elements it moves and the context's
    /// marks (the host clock here, CUDA events on a GPU).</summary>
    [Test]
    public void TheReferenceCopyReportsItsBandwidth()
    {
        var json = Path.GetTempFileName();
        try
        {
            var output = new StringWriter();
            Assert.That(OpCheckCommand.Run("cpu", [DType.BF16], bench: true, "reference bandwidth", json, output), Is.Zero, output.ToString());
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var row = report.RootElement.GetProperty("cases").EnumerateArray().Single();
            var (ms, gbps) = (row.GetProperty("median_ms").GetDouble(), row.GetProperty("gb_per_s").GetDouble());
            Assert.That(gbps * ms * 1e6, Is.EqualTo(2.0 * 4096 * 8192 * 2).Within(0.1).Percent, "GB/s × seconds is the bytes moved");
            Assert.That(output.ToString(), Does.Contain("| GB/s |"));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void AnUnwrittenElementAWrongResultAndAMissingOperatorAreNotPasses()
    {
        using var reference = Contexts.Cpu();
        using var context = Contexts.Cpu();
        // The checked context's "kernel" writes half of the output, the reference all of it.
        var unwritten = new OpChecks.Case("fill", "[4, 8]", 0, x =>
        {
            var output = x.Poisoned(4, 8);
            return () =>
            {
                using var written = output.Narrow(0, 0, x.Context == context ? 2 : 4);
                Elementwise.Fill(written, 1.0);
                return [output];
            };
        });
        Assert.That(OpCheckCommand.Check(unwritten, 1, DType.F32, reference, context, bench: false).Detail, Does.Contain("unwritten"));

        // The checked context computes something else than the reference (another scale): a relative error of 1e-3.
        var wrong = new OpChecks.Case("affine", "[64]", 0, x =>
        {
            var (input, output) = (x.Random(1, 64), x.Poisoned(64));
            var alpha = x.Context == context ? 1.001 : 1.0;
            return () => { Elementwise.Affine(input, alpha, 0, output); return [output]; };
        });
        var row = OpCheckCommand.Check(wrong, 1, DType.F32, reference, context, bench: false);
        Assert.That(row.Status, Is.EqualTo("FAIL"));
        Assert.That(row.RelativeL2, Is.EqualTo(1e-3).Within(1e-5));

        var missing = new OpChecks.Case("future_op", "[1]", 0, x => () =>
            x.Context == context ? throw new XDitException(XditStatus.Unsupported, "future_op is not implemented on host yet") : [x.Poisoned(1)]);
        Assert.That(OpCheckCommand.Check(missing, 1, DType.F32, reference, context, bench: false).Status, Is.EqualTo("missing"));
    }

    [Test]
    public void TheCommandPrintsATableAndWritesJson()
    {
        var json = Path.Combine(Path.GetTempPath(), $"xdit-ops-{Guid.NewGuid():N}.json");
        try
        {
            var output = new StringWriter();
            var exit = OpCheckCommand.Run("cpu", [DType.F32], bench: true, filter: "lerp", json, output);
            Assert.That(exit, Is.EqualTo(0), output.ToString());
            Assert.That(output.ToString(), Does.Contain("| lerp | guidance").And.Contain("1 passed, 0 failed, 0 missing"));
            using var document = JsonDocument.Parse(File.ReadAllText(json));
            var only = document.RootElement.GetProperty("cases").EnumerateArray().Single();
            Assert.That(only.GetProperty("result").GetString(), Is.EqualTo("ok"));
            Assert.That(only.GetProperty("median_ms").GetDouble(), Is.GreaterThan(0));
            Assert.That(() => OpCheckCommand.Run("cpu", [DType.F32], false, "no such op", null, TextWriter.Null), Throws.InstanceOf<UsageException>());
        }
        finally
        {
            File.Delete(json);
        }
    }
}
