using System.Diagnostics;
using XDit.Imaging;
using XDit.Pipelines;
using XDit.Weights;

namespace XDit.Cli;

/// <summary>
/// <c>xdit generate</c>: xDiT's argument names and defaults. A model is a diffusers folder
/// (<c>--model DIR</c>) or a named architecture with random weights (<c>--arch tiny-pixart
/// --random_weights</c>, weights made from <c>--seed</c>), optionally saved as a diffusers folder
/// (<c>--save_model DIR</c>). Prints a per-stage timing table; writes PNGs named like xDiT's, or the final
/// latents as safetensors with <c>--output_type latent</c>.
/// </summary>
public static class GenerateCommand
{
    public static int Run(CommandLine options, TextWriter output)
    {
        var source = ModelSource.Parse(options);
        var prompts = options.Strings("prompt");
        var negative = options.String("negative_prompt", "") ?? "";
        var height = options.Int("height", 0, min: 0);
        var width = options.Int("width", 0, min: 0);
        var steps = options.Int("num_inference_steps", 20, min: 1, max: 1000);
        var guidance = options.Double("guidance_scale", 4.5);
        var seed = options.Int("seed", 42, min: 0);
        var imagesPerPrompt = options.Int("num_images_per_prompt", 1, min: 1, max: 64);
        var maxSequenceLength = options.Int("max_sequence_length", 0, min: 0);
        var outputType = options.String("output_type", "pil");
        var outputPath = options.String("output");
        var binning = !options.Flag("no_use_resolution_binning");
        options.Int("warmup_steps", 1, min: 0);
        RejectParallelism(options);
        options.RejectUnknown("generate");
        if (outputType is not ("pil" or "png" or "latent"))
            throw new UsageException($"--output_type must be pil or latent, got '{outputType}'");

        using var loaded = source.Load(output);
        var pipeline = loaded.Pipeline;
        {
            var size = pipeline.DefaultImageSize;
            var request = new GenerationRequest
            {
                Prompts = prompts.Count > 0 ? prompts : new GenerationRequest().Prompts,
                NegativePrompt = negative,
                Height = height > 0 ? height : size,
                Width = width > 0 ? width : size,
                Steps = steps,
                GuidanceScale = guidance,
                Seed = (ulong)seed,
                ImagesPerPrompt = imagesPerPrompt,
                MaxSequenceLength = maxSequenceLength > 0 ? maxSequenceLength : loaded.Defaults.MaxSequenceLength,
                LatentsOnly = outputType == "latent",
                UseResolutionBinning = binning,
            };
            var progress = new ProgressLine(output);
            var result = pipeline.Generate(request, progress);
            progress.Finish();
            WriteOutputs(result, request, outputType, outputPath, loaded.Name, output);
            PrintTimings(result, output);
            return 0;
        }
    }

    /// <summary>xDiT's parallel degrees are accepted by name; meshes larger than one rank are not
    /// implemented yet and say so instead of silently running on one rank.</summary>
    static void RejectParallelism(CommandLine options)
    {
        foreach (var degree in new[] { "data_parallel_degree", "ulysses_degree", "ring_degree", "pipefusion_parallel_degree", "tensor_parallel_degree" })
            if (options.Int(degree, 1, min: 1) > 1)
                throw new UsageException($"--{degree} > 1: parallel meshes are not implemented in this version yet; run with degree 1");
        if (options.Flag("use_cfg_parallel")) throw new UsageException("--use_cfg_parallel: CFG parallelism is not implemented in this version yet");
        if (options.Flag("use_parallel_vae")) throw new UsageException("--use_parallel_vae: parallel VAE decode is not implemented in this version yet");
        if (options.Int("num_pipeline_patch", 1, min: 1) > 1) throw new UsageException("--num_pipeline_patch > 1 needs PipeFusion, which is not implemented yet");
        if (options.Ints("attn_layer_num_for_pp").Count > 0) throw new UsageException("--attn_layer_num_for_pp needs PipeFusion, which is not implemented yet");
        options.String("comm");
    }

    static void WriteOutputs(GenerationResult result, GenerationRequest request, string outputType, string? outputPath, string modelName,
        TextWriter output)
    {
        if (outputType == "latent")
        {
            var path = outputPath ?? $"{modelName}_latents_{request.Height}x{request.Width}.safetensors";
            var bytes = new byte[result.Latents.Length * sizeof(float)];
            Buffer.BlockCopy(result.Latents, 0, bytes, 0, bytes.Length);
            new SafetensorsWriter().Add("latents", SafetensorsDType.F32, result.LatentShape, bytes).Save(path);
            output.WriteLine($"wrote latents {string.Join("x", result.LatentShape)} to {path}");
            return;
        }
        for (int i = 0; i < result.Images.Count; i++)
        {
            var path = outputPath is not null && result.Images.Count == 1
                ? outputPath
                : outputPath is not null
                    ? Path.Combine(Path.GetDirectoryName(outputPath) ?? ".", $"{Path.GetFileNameWithoutExtension(outputPath)}_{i}{Path.GetExtension(outputPath)}")
                    : $"{modelName}_result_dp1_cfg1_ulysses1_ringNone_tp1_pp1_patchNone_{request.Height}x{request.Width}_{i}.png";
            PngWriter.Write(path, result.Images[i], result.Width, result.Height);
            output.WriteLine($"wrote {path}");
        }
    }

    static void PrintTimings(GenerationResult result, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("| stage | ms |");
        output.WriteLine("|---|---:|");
        foreach (var timing in result.Timings) output.WriteLine($"| {timing.Stage} | {timing.Duration.TotalMilliseconds:F1} |");
        output.WriteLine($"| total | {result.Timings.Sum(t => t.Duration.TotalMilliseconds):F1} |");
    }

    /// <summary>One progress line, redrawn in place on a terminal and printed per stage otherwise.</summary>
    sealed class ProgressLine(TextWriter output) : IProgress<GenerationProgress>
    {
        readonly bool _terminal = !Console.IsOutputRedirected && ReferenceEquals(output, Console.Out);
        string _last = "";

        public void Report(GenerationProgress value)
        {
            var line = value.Stage == "denoising"
                ? $"denoising step {value.Step}/{value.Steps} [{new string('#', 20 * value.Step / value.Steps),-20}] {value.Elapsed.TotalSeconds:F1} s"
                : $"{value.Stage} {value.Elapsed.TotalSeconds:F1} s";
            if (_terminal) output.Write("\r" + line.PadRight(_last.Length));
            else if (value.Stage != "denoising" || value.Step == value.Steps) output.WriteLine(line);
            _last = line;
        }

        public void Finish()
        {
            if (_terminal) output.WriteLine();
        }
    }
}
