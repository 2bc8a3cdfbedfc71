using System.Globalization;
using System.Text.Json;
using XDit.Ops;
using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// <c>xdit bench</c>: end-to-end latency per stage (text encoders, each denoising step, VAE decode),
/// warm-up runs excluded, median and spread over repeated runs, for a diffusers folder or a named
/// architecture with random weights of the real size; plus the FLOPs of one denoising step (counted
/// from the matrix products actually issued) and the throughput achieved. With parallel degrees (or
/// several meshes, <c>--compare "1;cfg2;ulysses2;ring2;cfg2xulysses2"</c>) each mesh runs on in-process
/// ranks and also reports the communication one rank issues per step, by collective (calls and bytes
/// sent; <c>DESIGN.md</c> §5b gives the cost model). Markdown tables, and JSON with <c>--json FILE</c>.
/// </summary>
public static class BenchCommand
{
    public static int Run(CommandLine options, TextWriter output)
    {
        if (options.Flag("blocks")) return BlockBenchCommand.Run(options, output);
        var source = ModelSource.Parse(options);
        var runs = options.Int("runs", 3, min: 1, max: 100);
        var warmup = options.Int("warmup", 1, min: 0, max: 10);
        var steps = options.Int("num_inference_steps", 4, min: 1, max: 1000);
        var height = options.Int("height", 0, min: 0);
        var width = options.Int("width", 0, min: 0);
        var prompt = options.String("prompt", "A small cactus with a happy face in the Sahara desert.")!;
        var json = options.String("json");
        var useGraph = options.Flag("use_cuda_graph");
        var single = MeshOptions.Parse(options);
        var compare = options.String("compare");
        var http = options.Flag("http");
        var concurrencies = options.Ints("concurrency");
        var requests = options.Int("requests", 8, min: 1, max: 10_000);
        var maxSeconds = options.Int("max_seconds", 300, min: 1, max: 86_400);
        if (concurrencies.Any(c => c is < 1 or > 256)) throw new UsageException("--concurrency takes levels in [1, 256], e.g. 1,2,4");
        if (!http && (concurrencies.Count > 0 || options.Has("requests") || options.Has("max_seconds")))
            throw new UsageException("--concurrency, --requests and --max_seconds belong to the HTTP throughput mode: add --http");
        if (http && compare is not null) throw new UsageException("--http measures one mesh; drop --compare");
        LinkModel link;
        try { link = LinkModel.Parse(options.String("link", "nvlink")!); }
        catch (ArgumentException e) { throw new UsageException($"--link: {e.Message}"); }
        options.RejectUnknown("bench");
        var meshes = compare is null ? [single] : compare.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ParseMesh).ToList();

        var (folder, defaults, name, temporary) = source.PrepareFolder(output);
        try
        {
            var size = defaults.Height > 0 ? defaults.Height : PipelineLoader.DefaultImageSize(folder);
            var request = defaults with
            {
                Prompts = Enumerable.Repeat(prompt, meshes.Max(m => m.DataParallelDegree)).ToList(), Steps = steps, Seed = 0,
                UseResolutionBinning = false, Height = height > 0 ? height : size, Width = width > 0 ? width : size, UseGraph = useGraph,
            };
            foreach (var mesh in meshes)
                try { ParallelGeneration.Validate(folder, request, mesh); }
                catch (XDitException e) { throw new UsageException($"mesh {mesh}: {e.Message}"); }
#if XDIT_GPU_KIT
            if (http) throw new UsageException("this xdit is the GPU check kit's, built without the HTTP service: --http is unavailable");
#else
            if (http) return Throughput(source, folder, name, request, single, concurrencies.Count > 0 ? concurrencies : [1, 2, 4], requests,
                TimeSpan.FromSeconds(maxSeconds), json, output);
#endif
            var reports = meshes.Select(mesh => Measure(source, folder, request, mesh, runs, warmup)).ToList();
            output.WriteLine();
            output.WriteLine($"{name}, {request.Height}x{request.Width}, {request.BatchSize} image(s), {steps} steps, {runs} runs after {warmup} warm-up" +
                             (useGraph ? "; each step from the third a replay of the second, captured as a graph (--use_cuda_graph)" : ""));
            foreach (var report in reports) WriteTable(report, output);
            var (_, _, patch) = PipelineLoader.TransformerShape(folder);
            var tokenRows = request.Height / PipelineLoader.VaeScaleFactor(folder) / patch;
            var oneRank = reports.FirstOrDefault(r => r.Mesh.WorldSize == 1);
            TimeSpan? Predicted(MeshReport r) => oneRank is null ? null
                : ScalingModel.StepTime(r.Mesh, TimeSpan.FromMilliseconds(oneRank.StepMedian), r.Communication, link, steps, tokenRows);
            if (reports.Any(r => r.Mesh.WorldSize > 1)) WriteCommunication(reports, Predicted, link, output);
            if (json is not null)
            {
                var document = new
                {
                    model = name, height = request.Height, width = request.Width, images = request.BatchSize, steps, runs, warmup, graph = useGraph,
                    meshes = reports.Select(r => new
                    {
                        mesh = r.Mesh.ToString(), ranks = r.Mesh.WorldSize, device = r.Device, flops_per_step = r.FlopsPerStep,
                        gflops_per_s = r.GflopsPerSecond, peak_bytes = r.PeakBytes,
                        predicted_step_ms_on_devices = Predicted(r)?.TotalMilliseconds, link = link.Name,
                        stages = r.Samples.ToDictionary(s => s.Key, s => new { median_ms = Median(s.Value), min_ms = s.Value.Min(), max_ms = s.Value.Max(), samples = s.Value.Count }),
                        communication_per_step = r.Communication.ToDictionary(c => c.Key, c => new { calls = c.Value.Calls, bytes_sent = c.Value.BytesSent }),
                    }),
                };
                File.WriteAllText(json, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
                output.WriteLine($"wrote {json}");
            }
            return 0;
        }
        finally
        {
            if (temporary is not null) Directory.Delete(temporary, recursive: true);
        }
    }

#if !XDIT_GPU_KIT
    /// <summary>The HTTP service's images/s and latency percentiles at each concurrency (<see cref="HttpLoadBench"/>).</summary>
    static int Throughput(ModelSource source, string folder, string name, GenerationRequest request, ParallelConfig mesh, IReadOnlyList<int> concurrencies,
        int requests, TimeSpan budget, string? json, TextWriter output)
    {
        using var loaded = source.LoadFolder(folder, TextWriter.Null, mesh);
        var body = new { prompt = request.Prompts[0], num_inference_steps = request.Steps, seed = 0, height = request.Height, width = request.Width, output = "png" };
        var levels = HttpLoadBench.Run(loaded, name, concurrencies, requests, budget, body, output);
        if (json is not null)
        {
            var document = new
            {
                model = name, mesh = mesh.ToString(), height = request.Height, width = request.Width, steps = request.Steps, requests,
                levels = levels.Select(l => new
                {
                    concurrency = l.Concurrency, completed = l.Completed, failed = l.Failed, seconds = l.Seconds,
                    images_per_s = l.ImagesPerSecond, p50_ms = l.P50Ms, p99_ms = l.P99Ms,
                }),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
            output.WriteLine($"wrote {json}");
        }
        return levels.Any(l => l.Failed > 0) ? 1 : 0;
    }
#endif

    /// <summary>One mesh's measurements: stage samples of rank 0, the FLOPs of one of its steps and the
    /// communication of its first measured step.</summary>
    /// <param name="PeakBytes">The most memory rank 0's context held at once (weights on a GPU included; on
    /// the CPU memory-mapped weights are not), from loading to the last run.</param>
    sealed record MeshReport(ParallelConfig Mesh, string Device, Dictionary<string, List<double>> Samples, long FlopsPerStep,
        IReadOnlyDictionary<string, CollectiveVolume> Communication, ulong PeakBytes)
    {
        public double StepMedian => Median(Samples["denoising step"]);
        public double GflopsPerSecond => FlopsPerStep / (StepMedian / 1000) / 1e9;
    }

    static MeshReport Measure(ModelSource source, string folder, GenerationRequest request, ParallelConfig mesh, int runs, int warmup)
    {
        using var loaded = source.LoadFolder(folder, TextWriter.Null, mesh);
        var samples = new Dictionary<string, List<double>>();
        var stepFlops = new List<long>();
        IReadOnlyDictionary<string, CollectiveVolume>? communication = null;
        for (int run = 0; run < warmup + runs; run++)
        {
            var recorder = new StepRecorder();
            var result = loaded.Pipeline.Generate(request, recorder);
            if (run < warmup) continue;
            stepFlops.AddRange(recorder.Flops);
            // The median step by bytes: every step of most meshes sends the same; PipeFusion's warmup steps
            // send more and its first and last windows carry the pipeline's fill and drain.
            communication ??= recorder.Communication.OrderBy(c => c.Values.Sum(v => v.BytesSent)).ElementAtOrDefault(recorder.Communication.Count / 2)
                              ?? new Dictionary<string, CollectiveVolume>();
            foreach (var timing in result.Timings)
            {
                var stage = timing.Stage.StartsWith("step ", StringComparison.Ordinal) ? "denoising step" : timing.Stage;
                (samples.TryGetValue(stage, out var list) ? list : samples[stage] = []).Add(timing.Duration.TotalMilliseconds);
            }
            (samples.TryGetValue("total", out var totals) ? totals : samples["total"] = []).Add(result.Timings.Sum(t => t.Duration.TotalMilliseconds));
        }
        var device = mesh.WorldSize == 1 ? loaded.Context.ToString()
            : source.Device.Kind == DeviceKind.Cpu
                ? $"{mesh.WorldSize} in-process CPU ranks, {Math.Max(1, Environment.ProcessorCount / mesh.WorldSize)} threads each"
                : $"{mesh.WorldSize} in-process ranks sharing {source.Device}";
        return new MeshReport(mesh, device, samples, stepFlops.Count > 0 ? stepFlops.Max() : 0, communication!,
            loaded.Context.AllocatorStats.PeakBytesInUse);
    }

    static void WriteTable(MeshReport report, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine($"mesh {report.Mesh} on {report.Device} (stages of rank 0)");
        output.WriteLine("| stage | median ms | min ms | max ms | samples |");
        output.WriteLine("|---|---:|---:|---:|---:|");
        foreach (var (stage, values) in report.Samples)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {stage} | {Median(values):F1} | {values.Min():F1} | {values.Max():F1} | {values.Count} |"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"FLOPs per denoising step (per rank): {report.FlopsPerStep / 1e9:F3} G (matrix products); achieved {report.GflopsPerSecond:F1} GFLOP/s; " +
            $"peak memory of rank 0's context {Bytes((long)report.PeakBytes)}"));
    }

    /// <summary>Per mesh: the step time next to what one rank sent in one step, by collective, and the step
    /// time the scaling model predicts on one device per rank (when a one-rank mesh was measured).</summary>
    static void WriteCommunication(IReadOnlyList<MeshReport> reports, Func<MeshReport, TimeSpan?> predicted, LinkModel link, TextWriter output)
    {
        var collectives = reports.SelectMany(r => r.Communication.Keys).Distinct().Order().ToList();
        output.WriteLine();
        output.WriteLine("communication of rank 0 per denoising step (calls × bytes per call; DESIGN.md §5b), and the step the scaling model " +
                         $"predicts with one device like this one per rank, over {link.Name}" +
                         (reports.Any(r => r.Mesh.WorldSize == 1) ? "" : " (add the mesh '1' to --compare for predictions)"));
        output.WriteLine($"| mesh | ranks | step median ms | {string.Join(" | ", collectives)} | total sent | predicted ms |");
        output.WriteLine($"|---|---:|---:|{string.Concat(collectives.Select(_ => "---:|"))}---:|---:|");
        foreach (var r in reports)
        {
            var cells = collectives.Select(c => r.Communication.TryGetValue(c, out var v) && v.Calls > 0 ? $"{v.Calls} × {Bytes(v.BytesSent / v.Calls)}" : "–");
            var prediction = predicted(r) is { } p ? p.TotalMilliseconds.ToString("F1", CultureInfo.InvariantCulture) : "–";
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Mesh} | {r.Mesh.WorldSize} | {r.StepMedian:F1} | {string.Join(" | ", cells)} | {Bytes(r.Communication.Values.Sum(v => v.BytesSent))} | {prediction} |"));
        }
    }

    static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 30 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1 << 30):F2} GiB"),
        >= 1 << 20 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1 << 20):F2} MiB"),
        >= 1 << 10 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB"),
        _ => $"{bytes} B",
    };

    /// <summary>"1", or degrees joined by 'x': dp2, cfg2 (or cfg), ulysses2 (u2), ring2 (r2), pp2 (PipeFusion
    /// stages, with patch4 for its patches and warmup2 for its warmup steps), and vae for the parallel VAE decode.</summary>
    internal static ParallelConfig ParseMesh(string spec)
    {
        var mesh = new ParallelConfig();
        if (spec == "1") return mesh;
        foreach (var part in spec.Split('x', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part == "vae")
            {
                mesh = mesh with { UseParallelVae = true };
                continue;
            }
            var name = new string(part.TakeWhile(char.IsLetter).ToArray());
            var digits = part[name.Length..];
            if (!int.TryParse(digits.Length == 0 && name == "cfg" ? "2" : digits, NumberStyles.None, CultureInfo.InvariantCulture, out var degree) || degree < 1)
                throw new UsageException($"--compare: '{part}' in mesh '{spec}' needs a degree (dp2, cfg2, ulysses2, ring2, pp2, patch4, warmup1) or is vae");
            mesh = name switch
            {
                "dp" => mesh with { DataParallelDegree = degree },
                "cfg" when degree is 1 or 2 => mesh with { UseCfgParallel = degree == 2 },
                "ulysses" or "u" => mesh with { UlyssesDegree = degree },
                "ring" or "r" => mesh with { RingDegree = degree },
                "pp" or "pipefusion" => mesh with { PipeFusionDegree = degree },
                "patch" => mesh with { NumPipelinePatch = degree },
                "warmup" => mesh with { WarmupSteps = degree },
                _ => throw new UsageException($"--compare: '{part}' in mesh '{spec}' is not one of dp<N>, cfg2, ulysses<N>, ring<N>, pp<N>, patch<N>, warmup<N>, vae"),
            };
        }
        return mesh;
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>Reads the reporting thread's FLOP and communication counters at each step boundary
    /// (progress reports arrive synchronously on the thread of rank 0).</summary>
    sealed class StepRecorder : IProgress<GenerationProgress>
    {
        long _flops = -1;
        IReadOnlyDictionary<string, CollectiveVolume>? _volumes;
        public List<long> Flops { get; } = [];
        public List<Dictionary<string, CollectiveVolume>> Communication { get; } = [];

        public void Report(GenerationProgress value)
        {
            if (value.Stage != "denoising" && value.Stage != "vae decode") return;
            if (_flops >= 0)
            {
                Flops.Add(FlopCounter.Current - _flops);
                Communication.Add(CommunicationCounter.Difference(CommunicationCounter.Snapshot(), _volumes!));
            }
            var inStep = value.Stage == "denoising";
            _flops = inStep ? FlopCounter.Current : -1;
            _volumes = inStep ? CommunicationCounter.Snapshot() : null;
        }
    }
}
