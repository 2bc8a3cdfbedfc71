using XDit.Parallel;
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
        var steps = options.Has("num_inference_steps") ? options.Int("num_inference_steps", 20, min: 1, max: 1000) : 0;
        var guidance = options.Has("guidance_scale") ? options.Double("guidance_scale", 4.5) : double.NaN;
        var seed = options.Int("seed", 42, min: 0);
        var imagesPerPrompt = options.Int("num_images_per_prompt", 1, min: 1, max: 64);
        var maxSequenceLength = options.Int("max_sequence_length", 0, min: 0);
        var outputType = options.String("output_type", "pil");
        var outputPath = options.String("output");
        var binning = !options.Flag("no_use_resolution_binning");
        var useGraph = options.Flag("use_cuda_graph");
        var parallel = MeshOptions.Parse(options);
        var checkSingleRank = options.Flag("check_single_rank");
        var comm = options.String("comm", "inproc");
        // In-process ranks compare every collective's signature always; over MPI it costs an all-gather per collective.
        var checkCollectives = options.Flag("check_collectives");
        RejectUnimplementedParallelism(options);
        options.RejectUnknown("generate");
        if (useGraph && StepGraph.ParallelismProblem(parallel.SequenceParallelDegree > 1, parallel.PipeFusionDegree > 1) is { } graphProblem)
            throw new UsageException(graphProblem);
        if (outputType is not ("pil" or "png" or "latent"))
            throw new UsageException($"--output_type must be pil or latent, got '{outputType}'");

        GenerationRequest Request(int size, GenerationRequest defaults) => new()
        {
            Prompts = prompts.Count > 0 ? prompts : new GenerationRequest().Prompts,
            NegativePrompt = negative,
            Height = height > 0 ? height : defaults.Height > 0 ? defaults.Height : size,
            Width = width > 0 ? width : defaults.Width > 0 ? defaults.Width : size,
            Steps = steps > 0 ? steps : defaults.Steps,
            GuidanceScale = double.IsNaN(guidance) ? defaults.GuidanceScale : guidance,
            Seed = (ulong)seed,
            ImagesPerPrompt = imagesPerPrompt,
            MaxSequenceLength = maxSequenceLength > 0 ? maxSequenceLength : defaults.MaxSequenceLength,
            LatentsOnly = outputType == "latent",
            UseResolutionBinning = binning,
            UseGraph = useGraph,
        };

        if (comm is "mpi" or "nccl")
            return RunMpi(source, parallel, output, Request, outputType, outputPath, checkSingleRank, checkCollectives, nccl: comm == "nccl");
        if (parallel.WorldSize > 1) return RunParallel(source, parallel, output, Request, outputType, outputPath, checkSingleRank);

        using var loaded = source.Load(output);
        var single = Request(loaded.Pipeline.DefaultImageSize, loaded.Defaults);
        var progress = new ProgressLine(output);
        var generated = loaded.Pipeline.Generate(single, progress);
        progress.Finish();
        WriteOutputs(generated, single, outputType, outputPath, loaded.Name, output);
        PrintTimings(generated, output);
        return 0;
    }

    /// <summary>The parallel methods on in-process ranks: the images and latents of the single-rank run,
    /// with the time of each stage of rank 0. The mesh is checked against the model before any weight loads.</summary>
    static int RunParallel(ModelSource source, ParallelConfig parallel, TextWriter output,
        Func<int, GenerationRequest, GenerationRequest> makeRequest, string outputType, string? outputPath, bool checkSingleRank)
    {
        var (folder, defaults, name, temporary) = source.PrepareFolder(output);
        try
        {
            var request = makeRequest(PipelineLoader.DefaultImageSize(folder), defaults);
            ParallelGeneration.Validate(folder, request, parallel);
            output.WriteLine($"running on {parallel.WorldSize} in-process ranks on {source.Device} ({parallel})");
            var progress = new ProgressLine(output);
            var result = ParallelGeneration.Run(folder, request, parallel, source.DType, progress: progress, device: source.Device);
            progress.Finish();
            WriteOutputs(result, request, outputType, outputPath, name, output, parallel);
            PrintTimings(result, output);
            if (checkSingleRank) CompareWithSingleRank(folder, request, source.DType, source.Device, result, output);
            return 0;
        }
        catch (XDitException e) when (e.Status == Native.XditStatus.InvalidArgument)
        {
            throw new UsageException(e.Message);
        }
        finally
        {
            if (temporary is not null) Directory.Delete(temporary, recursive: true);
        }
    }

    /// <summary>
    /// <c>--comm mpi</c> or <c>--comm nccl</c>: this process is one rank of an mpirun job whose size must be
    /// the mesh's. Every rank prepares the model (random weights are the same for the same seed) and runs its
    /// part; rank 0 gathers the result, prints and writes it. A rank that fails exits non-zero, and mpirun
    /// stops the job. With NCCL each process takes one GPU (<c>--device cuda:N</c> is the first; a node's
    /// processes take N, N+1, … by their local rank), MPI carries the NCCL id and the results, NCCL the mesh.
    /// </summary>
    static int RunMpi(ModelSource source, ParallelConfig parallel, TextWriter output,
        Func<int, GenerationRequest, GenerationRequest> makeRequest, string outputType, string? outputPath, bool checkSingleRank,
        bool checkCollectives, bool nccl)
    {
        var flag = nccl ? "--comm nccl" : "--comm mpi";
        if (!MpiCommunicator.LaunchedByMpirun)
            throw new UsageException($"{flag}: start the ranks with mpirun (mpirun -np {parallel.WorldSize} xdit generate ... {flag})");
        if (source.SavesModel)
            throw new UsageException($"{flag} with --save_model: every rank would write the folder; write it first (one process), then pass --model");
        if (!nccl && source.Device.Kind != DeviceKind.Cpu)
            throw new UsageException($"--comm mpi moves host memory, so its ranks run on the CPU; for {source.Device} use --comm nccl " +
                                     "(one GPU per process) or drop --comm (in-process ranks share the GPU)");
        if (nccl && source.Device.Kind != DeviceKind.Cuda)
            throw new UsageException("--comm nccl runs one rank per GPU: add --device cuda (or cuda:N, the first GPU of each node)");
        if (nccl && parallel.PipeFusionDegree > 1)
            throw new UsageException("--comm nccl with PipeFusion is not supported yet: its overlapped point-to-point messages would " +
                                     "need NCCL groups to avoid a send cycle on one stream; use --comm mpi or in-process ranks");
        var mpiWorld = MpiCommunicator.World();
        var local = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_SIZE"), out var n) && n > 0 ? n : 1;
        var localRank = int.TryParse(Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_LOCAL_RANK"), out var r) ? r : 0;
        var device = nccl ? Device.Cuda(source.Device.Index + localRank) : Device.Cpu;
        ICommunicator world = checkCollectives ? new CheckedCommunicator(mpiWorld) : mpiWorld;
        var log = world.Rank == 0 ? output : TextWriter.Null;
        var (folder, defaults, name, temporary) = source.PrepareFolder(log);
        try
        {
            if (world.Size != parallel.WorldSize)
                throw new UsageException($"the mesh {parallel} needs {parallel.WorldSize} ranks; mpirun started {world.Size} (use mpirun -np {parallel.WorldSize})");
            var request = makeRequest(PipelineLoader.DefaultImageSize(folder), defaults);
            try
            {
                ParallelGeneration.Validate(folder, request, parallel);
            }
            catch (XDitException e) when (e.Status == Native.XditStatus.InvalidArgument)
            {
                throw new UsageException(e.Message);
            }
            var options = new ContextOptions { NumThreads = Math.Max(1, Environment.ProcessorCount / local) };
            log.WriteLine(nccl ? $"running on {world.Size} MPI ranks with NCCL, one GPU each ({parallel})" : $"running on {world.Size} MPI ranks ({parallel})");
            var progress = world.Rank == 0 ? new ProgressLine(output) : null;
            var result = ParallelGeneration.RunOnWorld(world, folder, request, parallel, source.DType, options, progress, device: device);
            progress?.Finish();
            if (world.Rank == 0)
            {
                WriteOutputs(result, request, outputType, outputPath, name, output, parallel);
                PrintTimings(result, output);
                if (checkSingleRank) CompareWithSingleRank(folder, request, source.DType, Device.Cpu, result, output);
            }
            world.Barrier();
            ((IDisposable)world).Dispose();
            MpiCommunicator.FinalizeMpi();
            return 0;
        }
        finally
        {
            if (temporary is not null) Directory.Delete(temporary, recursive: true);
        }
    }

    /// <summary><c>--check_single_rank</c>: runs the same request on one rank and prints how far the
    /// parallel result is from it.</summary>
    static void CompareWithSingleRank(string folder, GenerationRequest request, DType dtype, Device device, GenerationResult parallel,
        TextWriter output)
    {
        using var context = DeviceContext.Create(device);
        using var pipeline = PipelineLoader.Load(folder, context, dtype);
        var single = pipeline.Generate(request);
        double diff = 0, norm = 0;
        for (int i = 0; i < single.Latents.Length; i++)
        {
            diff += Math.Pow(parallel.Latents[i] - single.Latents[i], 2);
            norm += Math.Pow(single.Latents[i], 2);
        }
        var relative = $"single-rank check: latents relative L2 {Math.Sqrt(diff / norm):E2}";
        if (single.Images.Count == 0)
        {
            output.WriteLine(relative);
            return;
        }
        var maxPixel = parallel.Images.Zip(single.Images).SelectMany(p => p.First.Zip(p.Second, (a, b) => Math.Abs(a - b))).DefaultIfEmpty(0).Max();
        output.WriteLine($"{relative}, largest pixel difference {maxPixel} " +
                         (maxPixel == 0 ? "(the parallel image is identical to the single-rank image)"
                             : maxPixel <= 1 ? "(the parallel image equals the single-rank image up to 8-bit rounding)" : "(DIFFERENT)"));
    }

    /// <summary>xDiT's tensor parallel degree is accepted by name; until it exists, a degree above 1
    /// says so instead of silently running on one rank.</summary>
    static void RejectUnimplementedParallelism(CommandLine options)
    {
        if (options.Int("tensor_parallel_degree", 1, min: 1) > 1)
            throw new UsageException("--tensor_parallel_degree > 1 is not implemented in this version yet (CFG, data, PipeFusion, Ulysses and Ring parallelism are); run with degree 1");
        var comm = options.String("comm", "inproc");
        if (comm is not ("inproc" or "mpi" or "nccl"))
            throw new UsageException($"--comm must be inproc, mpi or nccl, got '{comm}'");
    }

    static void WriteOutputs(GenerationResult result, GenerationRequest request, string outputType, string? outputPath, string modelName,
        TextWriter output, ParallelConfig? parallel = null)
    {
        foreach (var warning in result.Warnings) output.WriteLine($"warning: {warning}");
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
                    : $"{modelName}_result_dp{parallel?.DataParallelDegree ?? 1}_cfg{parallel?.CfgDegree ?? 1}_ulysses{parallel?.UlyssesDegree ?? 1}_ring{(parallel is { RingDegree: > 1 } ? parallel.RingDegree : "None")}_tp1_pp{parallel?.PipeFusionDegree ?? 1}_patch{(parallel is { PipeFusionDegree: > 1 } ? parallel.PatchCount : "None")}_{request.Height}x{request.Width}_{i}.png";
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
