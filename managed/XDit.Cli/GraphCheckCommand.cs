using System.Globalization;
using System.Text.Json;
using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// <c>xdit check --graph [--device cuda:N|cpu] [--dtype f32|bf16] [--arch A,B] [--json FILE]</c>: generations
/// whose steps from the third replay the second, captured as a graph (<c>--use_cuda_graph</c>), against the
/// eager generation on the same ranks: the latents and images must be the same bit for bit (the same kernels
/// run on the same inputs). For each tiny architecture (random weights) on one rank, and on two in-process
/// ranks with CFG parallelism (data parallelism for Flux); six steps. Also reports the median time of the
/// replayed steps next to the eager steps' (the graph's speed-up on these launch-bound tiny models).
/// Exit code 1 on any failure.
/// </summary>
public static class GraphCheckCommand
{
    const int Steps = 6;

    public sealed record Outcome(string Architecture, string Mesh, bool Identical, double EagerStepMs, double GraphStepMs, string? Error)
    {
        public double SpeedUp => EagerStepMs / GraphStepMs;
    }

    public static int Run(Device device, DType dtype, IReadOnlyList<string> architectures, string? jsonPath, TextWriter output)
    {
        foreach (var a in architectures)
            if (!MeshCheckCommand.TinyArchitectures.Contains(a))
                throw new UsageException($"--arch {a}: the graph check runs the tiny architectures ({string.Join(", ", MeshCheckCommand.TinyArchitectures)})");
        output.WriteLine($"captured steps against eager ones on {device}, {dtype.Name()}, {Steps} steps (latents and images bit for bit)");
        var outcomes = new List<Outcome>();
        foreach (var architecture in architectures)
        {
            var folder = Directory.CreateTempSubdirectory($"xdit-graph-{architecture}").FullName;
            try
            {
                Architectures.WriteRandomFolder(architecture, folder, seed: 11, dtype);
                var hasCfg = PipelineLoader.HasClassifierFreeGuidance(folder);
                var request = new GenerationRequest
                {
                    Prompts = ["a red fox", "a blue whale"], NegativePrompt = hasCfg ? "blurry" : "", Height = 144, Width = 144, Steps = Steps,
                    GuidanceScale = hasCfg ? 4.5 : 3.5, Seed = 9, MaxSequenceLength = 30,
                };
                foreach (var mesh in new[] { new ParallelConfig(), hasCfg ? new ParallelConfig { UseCfgParallel = true } : new ParallelConfig { DataParallelDegree = 2 } })
                {
                    var outcome = Check(architecture, folder, request, mesh, device, dtype);
                    outcomes.Add(outcome);
                    output.WriteLine($"{architecture} {mesh}: {(outcome.Identical ? "pass" : "FAIL" + (outcome.Error is null ? "" : ": " + outcome.Error))}");
                }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }

        output.WriteLine();
        output.WriteLine("| architecture | mesh | bit-identical | eager step ms | replayed step ms | speed-up | result |");
        output.WriteLine("|---|---|---|---:|---:|---:|---|");
        foreach (var o in outcomes)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {o.Architecture} | {o.Mesh} | {(o.Identical ? "yes" : "NO")} | {o.EagerStepMs:F2} | {o.GraphStepMs:F2} | {o.SpeedUp:F2}× | " +
                $"{(o.Identical ? "pass" : "FAIL" + (o.Error is null ? "" : ": " + o.Error))} |"));
        var failed = outcomes.Count(o => !o.Identical);
        output.WriteLine($"{outcomes.Count - failed} passed, {failed} failed");
        if (jsonPath is not null)
        {
            var document = new
            {
                device = device.ToString(), dtype = dtype.Name(), steps = Steps,
                cases = outcomes.Select(o => new
                {
                    architecture = o.Architecture, mesh = o.Mesh, bit_identical = o.Identical, eager_step_ms = o.EagerStepMs,
                    replayed_step_ms = o.GraphStepMs, speed_up = o.SpeedUp, error = o.Error,
                }),
            };
            File.WriteAllText(jsonPath, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"wrote {jsonPath}");
        }
        return failed == 0 ? 0 : 1;
    }

    static Outcome Check(string architecture, string folder, GenerationRequest request, ParallelConfig mesh, Device device, DType dtype)
    {
        try
        {
            using var ranks = ParallelPipeline.Load(folder, mesh, dtype, device: device);
            ranks.Generate(request); // warm-up: first-use costs out of both timings
            var eager = ranks.Generate(request);
            var captured = ranks.Generate(request with { UseGraph = true });
            var identical = eager.Latents.AsSpan().SequenceEqual(captured.Latents) && eager.Images.Count == captured.Images.Count &&
                            eager.Images.Zip(captured.Images).All(p => p.First.AsSpan().SequenceEqual(p.Second));
            return new Outcome(architecture, mesh.ToString(), identical, ReplayedStepMedian(eager), ReplayedStepMedian(captured),
                identical ? null : $"latents differ by {Comparison.RelativeL2(captured.Latents, eager.Latents):E2} (relative L2)");
        }
        catch (XDitException e)
        {
            return new Outcome(architecture, mesh.ToString(), false, double.NaN, double.NaN, e.Message);
        }
    }

    /// <summary>The median time of steps 3 onward: the ones a captured generation replays.</summary>
    static double ReplayedStepMedian(GenerationResult result)
    {
        var times = result.Timings.Where(t => t.Stage.StartsWith("step ", StringComparison.Ordinal)).Skip(2)
            .Select(t => t.Duration.TotalMilliseconds).Order().ToList();
        return times.Count == 0 ? double.NaN : times[times.Count / 2];
    }
}
