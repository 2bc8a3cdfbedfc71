using System.Globalization;
using System.Text.Json;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// <c>xdit bench --blocks [--device cuda:N|cpu] [--dtype bf16|f16|f32] [--block pixart-sigma,sd3-medium,flux-dev]
/// [--tokens 1024,4096] [--runs 5] [--write_cases DIR] [--json FILE]</c>: one full-width transformer block of
/// each real-size model (<see cref="BlockBenchmarkCase"/>) timed on the device between context marks (CUDA
/// events on a GPU), median of the runs after one warm-up, with its TFLOP/s. <c>--write_cases</c> writes each
/// block's weights, inputs and output for the PyTorch peer (bench/gpu/torch_blocks.py on a GPU,
/// bench/peers/torch_cpu_blocks.py on the CPU), which recomputes and times the same block.
/// </summary>
public static class BlockBenchCommand
{
    sealed record Result(string Block, int Tokens, double MedianMs, double Tflops, string? CaseFile);

    public static int Run(CommandLine options, TextWriter output)
    {
        var device = ModelSource.ParseDevice(options.String("device", "cpu")!);
        var dtype = ModelSource.ParseDType(options.String("dtype", device.Kind == DeviceKind.Cpu ? "f32" : "bf16")!);
        var blocks = options.String("block", string.Join(",", BlockBenchmarkCase.Blocks))!.Split(',', StringSplitOptions.RemoveEmptyEntries);
        var tokens = options.Ints("tokens") is { Count: > 0 } given ? given : [1024, 4096];
        var runs = options.Int("runs", 5, min: 1, max: 100);
        var cases = options.String("write_cases");
        var json = options.String("json");
        options.RejectUnknown("bench --blocks");
        foreach (var block in blocks)
            if (!BlockBenchmarkCase.Blocks.Contains(block))
                throw new UsageException($"--block {block}: known blocks are {string.Join(", ", BlockBenchmarkCase.Blocks)}");
        if (tokens.Any(t => t < 1)) throw new UsageException("--tokens takes positive image-token counts, e.g. 1024,4096");
        if (cases is not null) Directory.CreateDirectory(cases);

        using var context = DeviceContext.Create(device);
        var results = new List<Result>();
        foreach (var block in blocks)
            foreach (var count in tokens)
            {
                using var benchCase = BlockBenchmarkCase.Create(block, count, context, dtype);
                string? file = null;
                using (var first = benchCase.Forward())
                {
                    if (cases is not null) benchCase.WritePeerCase(file = Path.Combine(cases, benchCase.PeerCaseName), first);
                }
                var times = new List<double>();
                for (int run = 0; run < runs; run++)
                {
                    using var start = context.Mark();
                    using (benchCase.Forward()) { }
                    using var end = context.Mark();
                    times.Add(end.Since(start).TotalMilliseconds);
                }
                times.Sort();
                var median = times[times.Count / 2];
                results.Add(new Result(block, count, median, benchCase.Flops / (median / 1000) / 1e12, file));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{block} at {count} image tokens: {median:F2} ms"));
            }

        output.WriteLine();
        output.WriteLine($"one block, batch 1, {dtype.Name()} on {context} (median of {runs} runs after a warm-up, timed between context marks)");
        output.WriteLine("| block | image tokens | median ms | TFLOP/s |");
        output.WriteLine("|---|---:|---:|---:|");
        foreach (var r in results)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Block} | {r.Tokens} | {r.MedianMs:F2} | {r.Tflops:F2} |"));
        if (json is not null)
        {
            var document = new
            {
                device = context.ToString(), dtype = dtype.Name(), runs,
                blocks = results.Select(r => new { block = r.Block, tokens = r.Tokens, median_ms = r.MedianMs, tflops = r.Tflops, case_file = r.CaseFile }),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"wrote {json}");
        }
        return 0;
    }
}
