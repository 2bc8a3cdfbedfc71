using System.Globalization;
using System.Text.Json;
using XDit.Ops;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// <c>xdit bench</c>: end-to-end latency per stage (text encoders, each denoising step, VAE decode),
/// warm-up runs excluded, median and spread over repeated runs, for a diffusers folder or a named
/// architecture with random weights of the real size; plus the FLOPs of one denoising step (counted
/// from the matrix products actually issued) and the throughput achieved. Markdown table, and JSON with
/// <c>--json FILE</c>.
/// </summary>
public static class BenchCommand
{
    public static int Run(CommandLine options, TextWriter output)
    {
        var source = ModelSource.Parse(options);
        var runs = options.Int("runs", 3, min: 1, max: 100);
        var warmup = options.Int("warmup", 1, min: 0, max: 10);
        var steps = options.Int("num_inference_steps", 4, min: 1, max: 1000);
        var height = options.Int("height", 0, min: 0);
        var width = options.Int("width", 0, min: 0);
        var prompt = options.String("prompt", "A small cactus with a happy face in the Sahara desert.")!;
        var json = options.String("json");
        options.RejectUnknown("bench");

        using var loaded = source.Load(output);
        var pipeline = loaded.Pipeline;
        var defaults = loaded.Defaults;
        var size = defaults.Height > 0 ? defaults.Height : pipeline.DefaultImageSize;
        var request = defaults with
        {
            Prompts = [prompt], Steps = steps, Seed = 0, UseResolutionBinning = false,
            Height = height > 0 ? height : size, Width = width > 0 ? width : size,
        };
        var samples = new Dictionary<string, List<double>>();
        var stepFlops = new List<long>();
        for (int run = 0; run < warmup + runs; run++)
        {
            var counter = new StepFlops();
            var result = pipeline.Generate(request, counter);
            counter.Finish();
            if (run < warmup) continue;
            stepFlops.AddRange(counter.PerStep);
            foreach (var timing in result.Timings)
            {
                var stage = timing.Stage.StartsWith("step ", StringComparison.Ordinal) ? "denoising step" : timing.Stage;
                (samples.TryGetValue(stage, out var list) ? list : samples[stage] = new List<double>()).Add(timing.Duration.TotalMilliseconds);
            }
            (samples.TryGetValue("total", out var totals) ? totals : samples["total"] = new List<double>())
                .Add(result.Timings.Sum(t => t.Duration.TotalMilliseconds));
        }

        var flops = stepFlops.Count > 0 ? stepFlops.Max() : 0;
        var stepMedian = Median(samples["denoising step"]);
        var gflops = flops / (stepMedian / 1000) / 1e9;
        output.WriteLine();
        output.WriteLine($"{loaded.Name} on {pipeline.Context}, {request.Height}x{request.Width}, {steps} steps, {runs} runs after {warmup} warm-up");
        output.WriteLine("| stage | median ms | min ms | max ms | samples |");
        output.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (stage, values) in samples)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {stage} | {Median(values):F1} | {values.Min():F1} | {values.Max():F1} | {values.Count} |"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"FLOPs per denoising step: {flops / 1e9:F3} G (matrix products); achieved {gflops:F1} GFLOP/s"));
        if (json is not null)
        {
            var report = new
            {
                model = loaded.Name, device = pipeline.Context.ToString(), height = request.Height, width = request.Width,
                steps, runs, warmup, flops_per_step = flops, gflops_per_s = gflops,
                stages = samples.ToDictionary(s => s.Key, s => new { median_ms = Median(s.Value), min_ms = s.Value.Min(), max_ms = s.Value.Max(), samples = s.Value.Count }),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(report, new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"wrote {json}");
        }
        return 0;
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Reads the pipeline thread's FLOP counter at each step boundary (progress reports arrive
    /// synchronously on that thread).</summary>
    sealed class StepFlops : IProgress<GenerationProgress>
    {
        long _mark = -1;
        public List<long> PerStep { get; } = new();

        public void Report(GenerationProgress value)
        {
            if (value.Stage != "denoising" && value.Stage != "vae decode") return;
            if (_mark >= 0) PerStep.Add(FlopCounter.Current - _mark);
            _mark = value.Stage == "denoising" ? FlopCounter.Current : -1;
        }

        public void Finish() { }
    }
}
