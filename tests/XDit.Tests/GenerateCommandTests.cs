using XDit.Cli;

namespace XDit.Tests;

/// <summary><c>xdit generate</c> in-process on the built-in tiny models: latents written as safetensors,
/// the same for the same seed, PNG output, parallel meshes, and one-line usage errors.</summary>
[TestFixture]
public class GenerateCommandTests
{
    static int Generate(params string[] arguments) => GenerateCommand.Run(new CommandLine(arguments), TextWriter.Null);

    [Test]
    public void LatentOutputIsReproducibleAndImagesAreWritten()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-generate").FullName;
        try
        {
            string Latents(string name, string seed, params string[] extra)
            {
                var path = Path.Combine(folder, name);
                Assert.That(Generate(["--arch", "tiny-pixart", "--random-weights", "--num_inference_steps", "3", "--seed", seed,
                    "--output_type", "latent", "--output", path, .. extra]), Is.Zero);
                return path;
            }
            var a = GoldenTensors.Load(Latents("a.safetensors", "3")).F32("latents");
            var b = GoldenTensors.Load(Latents("b.safetensors", "3")).F32("latents");
            var c = GoldenTensors.Load(Latents("c.safetensors", "4")).F32("latents");
            var captured = GoldenTensors.Load(Latents("d.safetensors", "3", "--use_cuda_graph")).F32("latents");
            Assert.That(b, Is.EqualTo(a));
            Assert.That(c, Is.Not.EqualTo(a));
            Assert.That(captured, Is.EqualTo(a), "the third step replays the second's graph");
            var png = Path.Combine(folder, "image.png");
            Assert.That(Generate("--arch", "tiny-pixart", "--random_weights", "--num_inference_steps", "2", "--output", png), Is.Zero);
            Assert.That(File.ReadAllBytes(png).AsSpan(1, 3).ToArray(), Is.EqualTo("PNG"u8.ToArray()));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void SavedModelLoadsBackThroughModel()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-saved").FullName;
        try
        {
            var model = Path.Combine(folder, "tiny");
            var first = Path.Combine(folder, "first.safetensors");
            var second = Path.Combine(folder, "second.safetensors");
            Assert.That(Generate("--arch", "tiny-pixart", "--random_weights", "--save_model", model, "--num_inference_steps", "2",
                "--output_type", "latent", "--output", first, "--max_sequence_length", "30", "--height", "128", "--width", "128"), Is.Zero);
            Assert.That(Generate("--model", model, "--num_inference_steps", "2", "--output_type", "latent", "--output", second,
                "--max_sequence_length", "30", "--height", "128", "--width", "128"), Is.Zero);
            Assert.That(GoldenTensors.Load(second).F32("latents"), Is.EqualTo(GoldenTensors.Load(first).F32("latents")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>From the command line, for each model family: meshes of CFG, data parallel, Ulysses, Ring
    /// and PipeFusion (with warmup through both steps) on in-process ranks write the latents of the
    /// single-rank run (the 144² image's 81 tokens divide no degree).</summary>
    [TestCase("tiny-pixart", "--use_cfg_parallel", "--data_parallel_degree", "2")]
    [TestCase("tiny-pixart", "--ulysses_degree", "2", "--ring_degree", "2", "--use_cfg_parallel")]
    [TestCase("tiny-sd3", "--ulysses_degree", "4", "--use_cfg_parallel")]
    [TestCase("tiny-sd3", "--ring_degree", "2", "--data_parallel_degree", "2")]
    [TestCase("tiny-flux", "--ulysses_degree", "2", "--ring_degree", "4")]
    [TestCase("tiny-pixart", "--ring_degree", "3", "--use_parallel_vae")]
    [TestCase("tiny-sd3", "--pipefusion_parallel_degree", "2", "--num_pipeline_patch", "3", "--warmup_steps", "2", "--ulysses_degree", "2")]
    [TestCase("tiny-flux", "--pipefusion-parallel-degree", "2", "--attn_layer_num_for_pp", "3,5", "--warmup-steps", "2", "--use_parallel_vae")]
    public void ParallelRanksGiveTheSingleRankLatents(string arch, params string[] mesh)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-generate-parallel").FullName;
        try
        {
            float[] Latents(string name, params string[] extra)
            {
                var path = Path.Combine(folder, name);
                Assert.That(Generate(["--arch", arch, "--random_weights", "--num_inference_steps", "2", "--prompt", "a", "--prompt", "b",
                    "--height", "144", "--width", "144", "--output_type", "latent", "--output", path, .. extra]), Is.Zero);
                return GoldenTensors.Load(path).F32("latents");
            }
            var single = Latents("single.safetensors");
            var parallel = Latents("parallel.safetensors", mesh);
            Assert.That(Reference.RelativeL2(parallel, single), Is.LessThan(1e-5));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void UsageMistakesAreClear()
    {
        Assert.That(Assert.Throws<UsageException>(() => Generate())!.Message, Does.Contain("--model DIR"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart"))!.Message, Does.Contain("--random_weights"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--tensor_parallel_degree", "2"))!.Message,
            Does.Contain("not implemented"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--pipefusion_parallel_degree", "2",
            "--attn_layer_num_for_pp", "5,2"))!.Message, Does.Contain("add up to the model's 8 transformer blocks"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--ulysses_degree", "8"))!.Message,
            Does.Contain("ulysses_degree 8 must divide the model's 4 attention heads"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-flux", "--random_weights", "--use_cfg_parallel"))!.Message,
            Does.Contain("guidance-distilled"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--tensor-parallel-degree", "2"))!.Message,
            Does.Contain("tensor_parallel_degree"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--comm", "nccl", "--device", "cuda"))!.Message,
            Does.Contain("start the ranks with mpirun"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--comm", "gloo"))!.Message,
            Does.Contain("inproc, mpi or nccl"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--ring_degree", "2", "--use_cuda_graph"))!.Message,
            Does.Contain("--use_cuda_graph").And.Contain("sequence parallelism"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "tiny-pixart", "--random_weights", "--stepz", "2"))!.Message,
            Does.Contain("--stepz"));
        Assert.That(Assert.Throws<UsageException>(() => Generate("--arch", "nope", "--random_weights"))!.Message,
            Does.Contain("tiny-pixart").And.Contain("tiny-flux"));
    }
}
