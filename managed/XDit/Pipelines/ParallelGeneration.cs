using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>
/// Runs a generation on the ranks of a <see cref="ParallelConfig"/>, for any pipeline of
/// <see cref="PipelineLoader"/>: data parallelism (the batch split across replicas; each replica starts
/// from its rows of the whole batch's noise), CFG parallelism (the two guidance branches on two ranks)
/// and USP sequence parallelism (Ulysses × Ring over the tokens of every transformer pass). The ranks are
/// threads of this process (<see cref="Run"/> and <see cref="ParallelPipeline"/>, each with its own CPU
/// context and its share of the cores) or processes started by mpirun (<see cref="RunOnWorld"/>). The result — images in request order and
/// the final latents — equals the single-rank run's.
/// </summary>
public static class ParallelGeneration
{
    /// <summary>What the mesh checks need to know of a model, read once from its configs (no weights).</summary>
    internal sealed record ModelFacts(int AttentionHeads, int Layers, int PatchSize, bool HasClassifierFreeGuidance, int VaeScaleFactor)
    {
        public static ModelFacts Read(string folder)
        {
            var (heads, layers, patch) = PipelineLoader.TransformerShape(folder);
            return new(heads, layers, patch, PipelineLoader.HasClassifierFreeGuidance(folder), PipelineLoader.VaeScaleFactor(folder));
        }
    }

    /// <summary>Checks <paramref name="config"/> against the request and the model in
    /// <paramref name="folder"/> without loading any weight; the message names what is wrong and what fits.</summary>
    public static void Validate(string folder, GenerationRequest request, ParallelConfig config) =>
        Validate(ModelFacts.Read(folder), request, config);

    internal static void Validate(ModelFacts model, GenerationRequest request, ParallelConfig config)
    {
        var images = request.BatchSize;
        if (config.DataParallelDegree < 1 || images % config.DataParallelDegree != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"data parallel degree {config.DataParallelDegree} must divide the {images} images of the request (prompts × images per prompt)");
        if (config.UseCfgParallel && request.GuidanceScale <= 1)
            throw new XDitException(Native.XditStatus.InvalidArgument, "CFG parallelism needs classifier-free guidance (a guidance scale > 1)");
        ValidateForModel(model, config);
        if (request.UseGraph) StepGraph.CheckParallelism(config.SequenceParallelDegree > 1, config.PipeFusionDegree > 1);
        var latentRows = request.Height / model.VaeScaleFactor;
        if (config.PipeFusionDegree > 1) PipeFusion.Bands(latentRows, config, model.PatchSize);
        var decoders = config.CfgDegree * config.RanksPerBranch;
        if (config.UseParallelVae && !request.LatentsOnly && latentRows < decoders)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"the parallel VAE splits the {latentRows} latent rows of a {request.Height}-pixel image over {decoders} ranks per replica, " +
                "at least one row each: make the image taller or drop --use_parallel_vae");
    }

    /// <summary>The checks that do not depend on a request: the degrees themselves, the heads Ulysses
    /// splits, and CFG parallelism only for models with classifier-free guidance.</summary>
    internal static void ValidateForModel(ModelFacts model, ParallelConfig config)
    {
        if (config.UseCfgParallel && !model.HasClassifierFreeGuidance)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                "FLUX.1 is guidance-distilled: it has no classifier-free guidance to run in parallel (xDiT marks CFG parallel n/a for Flux); drop --use_cfg_parallel");
        config.Validate(model.AttentionHeads, model.Layers);
    }

    /// <summary>On <see cref="ParallelConfig.WorldSize"/> in-process ranks, loaded for this one request
    /// (a <see cref="ParallelPipeline"/> keeps them loaded between requests).</summary>
    /// <param name="contextOptions">The options of every rank's context (its thread count is replaced by
    /// the rank's share of the cores).</param>
    /// <param name="device">Where the ranks run: the CPU (the default) or one CUDA device they share.</param>
    /// <param name="progress">Reports world rank 0's progress.</param>
    /// <param name="cancellation">Stops every rank before the same step (<see cref="ProcessMesh.ThrowIfCancelled"/>).</param>
    public static GenerationResult Run(string folder, GenerationRequest request, ParallelConfig config, DType dtype = DType.F32,
        TimeSpan? timeout = null, ContextOptions? contextOptions = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default, Device? device = null)
    {
        Validate(folder, request, config);
        using var pipeline = ParallelPipeline.Load(folder, config, dtype, contextOptions, timeout, device);
        return pipeline.Generate(request, progress, cancellation);
    }

    /// <summary>
    /// As one rank of <paramref name="world"/> (for example <see cref="MpiCommunicator.World"/>, one process
    /// per rank): every rank calls it, and every rank returns the whole result (the replicas' latents and
    /// images are gathered over the world).
    /// </summary>
    /// <param name="contextOptions">This rank's context (its thread count included).</param>
    /// <param name="device">This rank's device: the CPU (the default), or one GPU per rank — the mesh's
    /// collectives then run on an NCCL communicator bootstrapped over <paramref name="world"/>, which still
    /// gathers the results.</param>
    public static GenerationResult RunOnWorld(ICommunicator world, string folder, GenerationRequest request, ParallelConfig config,
        DType dtype = DType.F32, ContextOptions? contextOptions = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default, Device? device = null)
    {
        Validate(folder, request, config);
        var where = device ?? Device.Cpu;
        if (where.Kind == DeviceKind.Cuda && config.PipeFusionDegree > 1)
            throw new XDitException(Native.XditStatus.Unsupported,
                "PipeFusion over NCCL is not supported yet (its overlapped point-to-point messages would need NCCL groups); use in-process or MPI ranks");
        using var context = DeviceContext.Create(where, contextOptions ?? new ContextOptions());
        using var nccl = where.Kind == DeviceKind.Cuda ? NcclCommunicator.Create(world, context) : null;
        using var mesh = ProcessMesh.Create((ICommunicator?)nccl ?? world, config);
        using var pipeline = PipelineLoader.Load(folder, context, dtype);
        var mine = RunRank(pipeline, mesh, request, config, progress, cancellation);
        return Assemble(GatherParts(world, mine, request), request);
    }

    internal sealed record RankPart(int Replica, bool Leader, GenerationResult Result);

    /// <summary>One rank's part of <paramref name="request"/>: its replica's images, from its rows of the
    /// whole batch's noise.</summary>
    internal static RankPart RunRank(IPipeline pipeline, ProcessMesh mesh, GenerationRequest request, ParallelConfig config,
        IProgress<GenerationProgress>? progress, CancellationToken cancellation)
    {
        var replica = mesh.DataParallelRank;
        var perReplica = request.BatchSize / config.DataParallelDegree;
        var part = request with
        {
            Prompts = request.PromptPerImage().Skip(replica * perReplica).Take(perReplica).ToList(),
            ImagesPerPrompt = 1,
            NoiseOffset = replica * perReplica,
            NoiseBatch = request.BatchSize,
        };
        return new RankPart(replica, mesh.IsReplicaLeader, pipeline.Generate(part, mesh, progress, cancellation));
    }

    /// <summary>The replica leaders' results, in replica order, as one result for the whole request.</summary>
    internal static GenerationResult Assemble(IReadOnlyList<RankPart> parts, GenerationRequest request)
    {
        var leaders = parts.Where(p => p.Leader).OrderBy(p => p.Replica).Select(p => p.Result).ToList();
        var first = leaders[0];
        var latentShape = first.LatentShape.ToArray();
        latentShape[0] = request.BatchSize;
        return new GenerationResult(leaders.SelectMany(r => r.Images).ToList(), first.Width, first.Height,
            leaders.SelectMany(r => r.Latents).ToArray(), latentShape, first.Timings) { ResolutionBin = first.ResolutionBin, Warnings = first.Warnings };
    }

    /// <summary>Every rank's part on every rank: latents (all ranks of a replica hold its latents) and the
    /// leaders' images, all-gathered over the world as fixed-size buffers.</summary>
    static List<RankPart> GatherParts(ICommunicator world, RankPart mine, GenerationRequest request)
    {
        using var context = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = 1 });
        using var scope = new TensorScope();
        var result = mine.Result;
        var imageBytes = (long)result.Width * result.Height * 3;
        // The same sizes on every rank: the replica's images when the request decodes, whether this rank decoded or not.
        var imageCount = request.LatentsOnly ? 0 : (int)result.LatentShape[0];
        // [replica, leader, latents..., image bytes packed 4 to an int...]
        var header = 2;
        var latentInts = result.Latents.Length;
        var imageInts = (int)((imageCount * imageBytes + 3) / 4);
        var packed = new int[header + latentInts + imageInts];
        packed[0] = mine.Replica;
        packed[1] = mine.Leader ? 1 : 0;
        Buffer.BlockCopy(result.Latents, 0, packed, header * 4, latentInts * 4);
        if (mine.Leader)
            for (int i = 0; i < result.Images.Count; i++)
                Buffer.BlockCopy(result.Images[i], 0, packed, (header + latentInts) * 4 + (int)(i * imageBytes), (int)imageBytes);
        var local = Tensor.FromArray(context, packed, packed.Length);
        var all = Tensor.Empty(context, DType.I32, world.Size, packed.Length);
        world.AllGather(local, all);
        var gathered = all.ToArray<int>();
        var parts = new List<RankPart>();
        for (int r = 0; r < world.Size; r++)
        {
            var row = gathered.AsSpan(r * packed.Length, packed.Length);
            var leader = row[1] != 0;
            var latents = new float[latentInts];
            Buffer.BlockCopy(row.Slice(header, latentInts).ToArray(), 0, latents, 0, latentInts * 4);
            var images = new List<byte[]>();
            if (leader && imageCount > 0)
            {
                var bytes = new byte[imageInts * 4];
                Buffer.BlockCopy(row.Slice(header + latentInts).ToArray(), 0, bytes, 0, bytes.Length);
                for (int i = 0; i < imageCount; i++) images.Add(bytes.AsSpan((int)(i * imageBytes), (int)imageBytes).ToArray());
            }
            parts.Add(new RankPart(row[0], leader, result with { Latents = latents, Images = images }));
        }
        return parts;
    }
}
