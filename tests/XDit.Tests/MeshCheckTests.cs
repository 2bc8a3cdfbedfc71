using System.Text.Json;
using XDit.Cli;

namespace XDit.Tests;

/// <summary>
/// <c>xdit check --meshes</c>, the GPU kit's parallel-methods stage, run here on in-process CPU ranks: each
/// mesh's latents against the single-rank run, and the second run of every mesh against its first.
/// </summary>
[TestFixture]
public class MeshCheckTests
{
    /// <summary>SD3 (joint attention, CFG) on the meshes with ring 2 of at most 4 ranks: sequence, CFG and data
    /// parallelism, PipeFusion with ring, and the parallel VAE.</summary>
    [Test]
    public void RingMeshesOfSd3PassOnCpuRanks()
    {
        var json = Path.GetTempFileName();
        try
        {
            var output = new StringWriter();
            var exit = MeshCheckCommand.Run(Device.Cpu, DType.F32, ["tiny-sd3"], maxRanks: 4, filter: "ring 2", json, output);
            Assert.That(exit, Is.Zero, output.ToString());
            using var report = JsonDocument.Parse(File.ReadAllText(json));
            var meshes = report.RootElement.GetProperty("meshes").EnumerateArray().ToList();
            Assert.That(meshes.Select(m => m.GetProperty("mesh").GetString()), Has.Some.Contains("pipefusion").And.Some.Contains("parallel VAE")
                .And.Some.Contains("cfg 2").And.Some.Contains("dp 2"));
            foreach (var mesh in meshes)
            {
                Assert.That(mesh.GetProperty("latents_relative_l2").GetDouble(), Is.LessThan(1e-5), mesh.ToString());
                Assert.That(mesh.GetProperty("largest_pixel_difference").GetInt32(), Is.LessThanOrEqualTo(1), mesh.ToString());
                Assert.That(mesh.GetProperty("repeats_bit_for_bit").GetBoolean(), Is.True, mesh.ToString());
            }
            Assert.That(output.ToString(), Does.Contain($"{meshes.Count} passed, 0 failed"));
        }
        finally
        {
            File.Delete(json);
        }
    }

    [Test]
    public void TheMeshesCoverTheGridAndPipeFusionWithinTheRankLimit()
    {
        var withCfg = MeshCheckCommand.Meshes(hasCfg: true, maxRanks: 8, steps: 2).ToList();
        Assert.That(withCfg.All(m => m.WorldSize is > 1 and <= 8));
        Assert.That(withCfg, Is.Unique);
        foreach (var dp in new[] { 1, 2 })
        foreach (var cfg in new[] { false, true })
        foreach (var ulysses in new[] { 1, 2, 4 })
        foreach (var ring in new[] { 1, 2, 4 })
        {
            var mesh = new Parallel.ParallelConfig { DataParallelDegree = dp, UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring };
            Assert.That(withCfg.Contains(mesh), Is.EqualTo(mesh.WorldSize is > 1 and <= 8), mesh.ToString());
        }
        // PipeFusion runs every step as a warm-up step: exact, so comparable with the single-rank run.
        Assert.That(withCfg.Where(m => m.PipeFusionDegree > 1).All(m => m.WarmupSteps == 2));
        Assert.That(MeshCheckCommand.Meshes(hasCfg: false, maxRanks: 8, steps: 2).Any(m => m.UseCfgParallel), Is.False);
    }

    [Test]
    public void UnknownArchitecturesAndFiltersThatMatchNothingAreUsageErrors()
    {
        Assert.Throws<UsageException>(() => MeshCheckCommand.Run(Device.Cpu, DType.F32, ["pixart-sigma"], 8, null, null, TextWriter.Null));
        Assert.Throws<UsageException>(() => MeshCheckCommand.Run(Device.Cpu, DType.F32, ["tiny-flux"], 8, "no such mesh", null, TextWriter.Null));
    }

    /// <summary>The kit's stage on a GPU machine that also has the .NET SDK (skipped elsewhere).</summary>
    [Test]
    [Category("GPU")]
    public void EveryMeshOnCudaGivesTheSingleRankResult()
    {
        Contexts.CudaOrIgnore().Dispose();
        var output = new StringWriter();
        var exit = MeshCheckCommand.Run(Device.Cuda(0), DType.F32, MeshCheckCommand.TinyArchitectures, 8, null, null, output);
        Assert.That(exit, Is.Zero, output.ToString());
    }
}
