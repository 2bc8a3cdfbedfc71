using System.Diagnostics;
using XDit.Cli;

namespace XDit.Tests;

/// <summary>
/// The MPI communicator under a real <c>mpirun</c> (Open MPI, one rank per process, the test
/// assembly's own <c>xdit</c>): every collective against its sequential reference on 1–4 ranks, and a
/// representative subset of meshes for each model family giving the single-rank latents of an
/// in-process run.
/// </summary>
[TestFixture]
[NonParallelizable]
public class MpiTests
{
    static (int ExitCode, string Output) Mpirun(int ranks, params string[] arguments)
    {
        if (!File.Exists("/usr/bin/mpirun") && !File.Exists("/usr/local/bin/mpirun"))
            Assert.Ignore("mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev)");
        var start = new ProcessStartInfo("mpirun")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--allow-run-as-root", "--oversubscribe", "-np", ranks.ToString(), "-x", "TERM",
                     Path.Combine(AppContext.BaseDirectory, "xdit") }.Concat(arguments))
            start.ArgumentList.Add(a);
        start.Environment["TERM"] = "dumb";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"mpirun -np {ranks} xdit {string.Join(' ', arguments)} did not finish in 5 minutes");
        }
        var output = stdout.Result + stderr.Result;
        TestContext.Out.WriteLine(output);
        return (process.ExitCode, output);
    }

    [TestCase(1)]
    [TestCase(3)]
    [TestCase(4)]
    public void CollectivesMatchTheSequentialReference(int ranks)
    {
        var (code, output) = Mpirun(ranks, "check", "--comm", "mpi");
        Assert.That(code, Is.Zero, output);
        Assert.That(output, Does.Contain($"MPI world of {ranks} ranks").And.Contain(" passed, 0 failed"));
        Assert.That(output, Does.Contain("| all_to_all | pass |").And.Contain("| shift | pass |"));
    }

    [TestCase("tiny-pixart", "--use_cfg_parallel", "--ulysses_degree", "2")]
    [TestCase("tiny-sd3", "--ulysses_degree", "2", "--ring_degree", "2")]
    [TestCase("tiny-flux", "--data_parallel_degree", "2", "--ring_degree", "2", "--check_collectives")]
    [TestCase("tiny-pixart", "--pipefusion_parallel_degree", "2", "--use_cfg_parallel", "--warmup_steps", "2", "--check_collectives")]
    [TestCase("tiny-flux", "--pipefusion_parallel_degree", "4", "--num_pipeline_patch", "2", "--warmup_steps", "2")]
    public void MeshesGiveTheSingleRankLatents(string arch, params string[] mesh) => MpiEqualsInProcess(arch, [], mesh, 1e-5);

    /// <summary>PipeFusion with stale keys and values under mpirun equals the same mesh on in-process ranks.</summary>
    [TestCase("tiny-sd3", "--pipefusion_parallel_degree", "2", "--num_pipeline_patch", "3", "--data_parallel_degree", "2")]
    public void StalePipeFusionEqualsTheInProcessRun(string arch, params string[] mesh) => MpiEqualsInProcess(arch, mesh, mesh, 1e-5);

    /// <summary>Latents of <paramref name="mesh"/> on 4 MPI ranks against <paramref name="reference"/> on
    /// in-process ranks (none: one rank).</summary>
    static void MpiEqualsInProcess(string arch, string[] reference, string[] mesh, double tolerance)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-mpi").FullName;
        try
        {
            string[] common = ["--arch", arch, "--random_weights", "--num_inference_steps", "2", "--prompt", "a", "--prompt", "b",
                "--height", "144", "--width", "144", "--output_type", "latent"];
            var single = Path.Combine(folder, "single.safetensors");
            Assert.That(GenerateCommand.Run(new CommandLine([.. common, .. reference, "--output", single]), TextWriter.Null), Is.Zero);
            var parallel = Path.Combine(folder, "parallel.safetensors");
            var (code, output) = Mpirun(4, ["generate", .. common, "--output", parallel, "--comm", "mpi", .. mesh]);
            Assert.That(code, Is.Zero, output);
            Assert.That(output, Does.Contain("running on 4 MPI ranks"));
            var error = Reference.RelativeL2(GoldenTensors.Load(parallel).F32("latents"), GoldenTensors.Load(single).F32("latents"));
            TestContext.Out.WriteLine($"{arch} {string.Join(' ', mesh)} under mpirun: relative L2 {error:E2}");
            Assert.That(error, Is.LessThan(tolerance));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary><c>--comm nccl</c> where the ranks cannot get their GPUs (this machine has none): every rank
    /// stops with the reason instead of waiting for the others in NCCL.</summary>
    [Test]
    public void NcclWithoutAUsableGpuStopsEveryRankWithTheReason()
    {
        if (XDitLibrary.GetBuildInfo().CudaDeviceCount > 0) Assert.Ignore("this machine has a GPU: the failure path needs one without");
        var (code, output) = Mpirun(2, "generate", "--arch", "tiny-pixart", "--random_weights", "--comm", "nccl", "--device", "cuda",
            "--ulysses_degree", "2", "--num_inference_steps", "1", "--output_type", "latent", "--output", "/dev/null");
        Assert.That(code, Is.Not.Zero);
        Assert.That(output, Does.Contain("running on 2 MPI ranks with NCCL").And.Contain("CUDA"));
    }

    [Test]
    public void AWorldOfTheWrongSizeIsAClearError()
    {
        var (code, output) = Mpirun(3, "generate", "--arch", "tiny-pixart", "--random_weights", "--comm", "mpi", "--ulysses_degree", "2",
            "--ring_degree", "2", "--num_inference_steps", "1", "--output_type", "latent", "--output", "/dev/null");
        Assert.That(code, Is.Not.Zero);
        Assert.That(output, Does.Contain("needs 4 ranks; mpirun started 3"));
    }
}
