using System.Diagnostics;
using System.Text.Json;
using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// <c>xdit check --meshes [--device cuda:N|cpu] [--dtype f32|bf16] [--arch A,B] [--max_ranks N] [--filter TEXT]
/// [--json FILE]</c>: every parallel method on in-process ranks of one device against the single-rank run
/// on the same device. For each tiny architecture (random weights), each mesh — the dp × cfg × ulysses ×
/// ring grid, PipeFusion alone and in hybrids (with every step a warm-up step, which makes it exact), the
/// parallel VAE — generates the same request twice with the ranks loaded once: the latents must be the
/// single-rank latents within the dtype's bound (relative L2: f32 1e-5, bf16/f16 1e-2), the images within
/// one 8-bit level (f32) or the same bound (half types), and the second run must repeat the first bit for
/// bit (races that CPU runs hide show on a GPU as run-to-run differences). Exit code 1 on any failure.
/// </summary>
public static class MeshCheckCommand
{
    public static readonly IReadOnlyList<string> TinyArchitectures = ["tiny-pixart", "tiny-sd3", "tiny-flux"];

    public sealed record Outcome(string Architecture, string Mesh, int Ranks, double LatentError, int? LargestPixelDifference,
        double ImageError, bool Repeats, bool Passed, double Seconds, string? Error);

    public static int Run(Device device, DType dtype, IReadOnlyList<string> architectures, int maxRanks, string? filter, string? jsonPath,
        TextWriter output)
    {
        foreach (var a in architectures)
            if (!TinyArchitectures.Contains(a))
                throw new UsageException($"--arch {a}: the mesh check runs the tiny architectures ({string.Join(", ", TinyArchitectures)})");
        var outcomes = new List<Outcome>();
        var bound = dtype == DType.F32 ? 1e-5 : 1e-2;
        output.WriteLine($"meshes of at most {maxRanks} in-process ranks on {device}, {dtype.Name()}, against the single-rank run there " +
                         $"(latents relative L2 < {bound:G}, then the same again bit for bit)");
        foreach (var architecture in architectures)
        {
            var folder = Directory.CreateTempSubdirectory($"xdit-meshes-{architecture}").FullName;
            try
            {
                Architectures.WriteRandomFolder(architecture, folder, seed: 11, dtype);
                var hasCfg = PipelineLoader.HasClassifierFreeGuidance(folder);
                var request = Request(hasCfg);
                var meshes = Meshes(hasCfg, maxRanks, request.Steps)
                    .Where(m => filter is null || m.ToString().Contains(filter, StringComparison.OrdinalIgnoreCase)).ToList();
                if (meshes.Count == 0) continue;
                GenerationResult single;
                using (var context = DeviceContext.Create(device))
                using (var pipeline = PipelineLoader.Load(folder, context, dtype))
                    single = pipeline.Generate(request);
                foreach (var mesh in meshes)
                {
                    var outcome = Check(architecture, folder, request, mesh, device, dtype, single, bound);
                    outcomes.Add(outcome);
                    output.WriteLine($"{architecture} {mesh}: {Verdict(outcome)}");
                }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        if (outcomes.Count == 0) throw new UsageException($"--filter '{filter}' matches no mesh");

        output.WriteLine();
        output.WriteLine("| architecture | mesh | ranks | latents rel. L2 | image | repeats | seconds | result |");
        output.WriteLine("|---|---|---:|---:|---|---|---:|---|");
        foreach (var o in outcomes)
            output.WriteLine($"| {o.Architecture} | {o.Mesh} | {o.Ranks} | {o.LatentError:E2} | {ImageText(o)} | {(o.Repeats ? "yes" : "NO")} | " +
                             $"{o.Seconds:F1} | {(o.Passed ? "pass" : "FAIL" + (o.Error is null ? "" : ": " + o.Error))} |");
        var failed = outcomes.Count(o => !o.Passed);
        output.WriteLine($"{outcomes.Count - failed} passed, {failed} failed");
        if (jsonPath is not null) WriteJson(jsonPath, device, dtype, outcomes);
        return failed == 0 ? 0 : 1;
    }

    /// <summary>Two prompts (so data parallelism splits them), a negative prompt (so CFG has two branches),
    /// a text of 30 tokens (not a multiple of 4) and 18 × 18 latents (no degree of 4 divides them), two steps.</summary>
    static GenerationRequest Request(bool hasCfg) => new()
    {
        Prompts = ["a red fox", "a blue whale"], NegativePrompt = hasCfg ? "blurry" : "", Height = 144, Width = 144, Steps = 2,
        GuidanceScale = hasCfg ? 4.5 : 3.5, Seed = 9, MaxSequenceLength = 30,
    };

    /// <summary>The meshes of at most <paramref name="maxRanks"/> ranks: every dp ∈ {1, 2}, cfg ∈ {1, 2} (with
    /// classifier-free guidance), ulysses ∈ {1, 2, 4}, ring ∈ {1, 2, 4}; PipeFusion with 2 and 4 stages and
    /// in hybrids with each other method; the parallel VAE with sequence and CFG parallelism.</summary>
    public static IEnumerable<ParallelConfig> Meshes(bool hasCfg, int maxRanks, int steps)
    {
        bool[] cfgs = hasCfg ? [false, true] : [false];
        var meshes = new List<ParallelConfig>();
        foreach (var dp in new[] { 1, 2 })
        foreach (var cfg in cfgs)
        foreach (var ulysses in new[] { 1, 2, 4 })
        foreach (var ring in new[] { 1, 2, 4 })
            meshes.Add(new ParallelConfig { DataParallelDegree = dp, UseCfgParallel = cfg, UlyssesDegree = ulysses, RingDegree = ring });
        var pipe = new ParallelConfig { PipeFusionDegree = 2, WarmupSteps = steps };
        meshes.AddRange([
            pipe, pipe with { PipeFusionDegree = 4 }, pipe with { NumPipelinePatch = 3 }, pipe with { UlyssesDegree = 2 },
            pipe with { RingDegree = 2 }, pipe with { DataParallelDegree = 2 }, pipe with { UseCfgParallel = hasCfg, UlyssesDegree = 2 },
            new ParallelConfig { UlyssesDegree = 2, UseParallelVae = true },
            new ParallelConfig { UseCfgParallel = hasCfg, RingDegree = 2, UseParallelVae = true },
            pipe with { UseParallelVae = true },
        ]);
        return meshes.Where(m => m.WorldSize > 1 && m.WorldSize <= maxRanks).Distinct();
    }

    static Outcome Check(string architecture, string folder, GenerationRequest request, ParallelConfig mesh, Device device, DType dtype,
        GenerationResult single, double bound)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            using var ranks = ParallelPipeline.Load(folder, mesh, dtype, device: device);
            var first = ranks.Generate(request);
            var second = ranks.Generate(request);
            var latentError = Comparison.RelativeL2(first.Latents, single.Latents);
            var repeats = first.Latents.AsSpan().SequenceEqual(second.Latents) &&
                          first.Images.Zip(second.Images).All(p => p.First.AsSpan().SequenceEqual(p.Second));
            int? pixels = null;
            double imageError = 0;
            if (first.Images.Count == single.Images.Count && single.Images.Count > 0)
            {
                pixels = first.Images.Zip(single.Images).SelectMany(p => p.First.Zip(p.Second, (a, b) => Math.Abs(a - b))).Max();
                imageError = Comparison.RelativeL2(Floats(first.Images), Floats(single.Images));
            }
            var imagesAgree = pixels is null ? first.Images.Count == single.Images.Count : dtype == DType.F32 ? pixels <= 1 : imageError < bound;
            var passed = latentError < bound && imagesAgree && repeats;
            var imageProblem = imagesAgree ? null
                : first.Images.Count != single.Images.Count ? $"{first.Images.Count} images, {single.Images.Count} expected"
                : $"images differ by up to {pixels} levels";
            return new Outcome(architecture, mesh.ToString(), mesh.WorldSize, latentError, pixels, imageError, repeats, passed,
                clock.Elapsed.TotalSeconds, imageProblem);
        }
        catch (XDitException e)
        {
            return new Outcome(architecture, mesh.ToString(), mesh.WorldSize, double.NaN, null, double.NaN, false, false, clock.Elapsed.TotalSeconds,
                e.Message);
        }
    }

    static float[] Floats(IReadOnlyList<byte[]> images) => images.SelectMany(image => image.Select(b => (float)b)).ToArray();

    static string ImageText(Outcome o) => o.LargestPixelDifference is { } p ? $"≤ {p} levels, rel. L2 {o.ImageError:E1}" : "–";

    static string Verdict(Outcome o) => o.Passed
        ? $"pass (latents {o.LatentError:E2}, {o.Seconds:F1} s)"
        : $"FAIL (latents {o.LatentError:E2}, repeats {(o.Repeats ? "yes" : "no")}{(o.Error is null ? "" : ", " + o.Error)})";

    static void WriteJson(string path, Device device, DType dtype, List<Outcome> outcomes)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("device", device.ToString());
        json.WriteString("dtype", dtype.Name());
        json.WriteStartArray("meshes");
        foreach (var o in outcomes)
        {
            json.WriteStartObject();
            json.WriteString("architecture", o.Architecture);
            json.WriteString("mesh", o.Mesh);
            json.WriteNumber("ranks", o.Ranks);
            if (double.IsFinite(o.LatentError)) json.WriteNumber("latents_relative_l2", o.LatentError);
            else json.WriteNull("latents_relative_l2");
            if (o.LargestPixelDifference is { } p) json.WriteNumber("largest_pixel_difference", p);
            json.WriteBoolean("repeats_bit_for_bit", o.Repeats);
            json.WriteNumber("seconds", o.Seconds);
            json.WriteBoolean("passed", o.Passed);
            if (o.Error is not null) json.WriteString("error", o.Error);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
