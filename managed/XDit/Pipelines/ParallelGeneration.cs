using XDit.Parallel;

namespace XDit.Pipelines;

/// <summary>
/// Runs a generation on the in-process ranks of a <see cref="ParallelConfig"/> (threads, each with its own
/// CPU context and its share of the cores), for any pipeline of <see cref="PipelineLoader"/>: data
/// parallelism (the batch split across replicas; each replica starts from its rows of the whole batch's
/// noise), CFG parallelism (the two guidance branches on two ranks) and USP sequence parallelism (Ulysses
/// × Ring over the tokens of every transformer pass). The result — images in request order and the final
/// latents — equals the single-rank run's.
/// </summary>
public static class ParallelGeneration
{
    /// <summary>Checks <paramref name="config"/> against the request and the model in
    /// <paramref name="folder"/> without loading any weight; the message names what is wrong and what fits.</summary>
    public static void Validate(string folder, GenerationRequest request, ParallelConfig config)
    {
        var images = request.BatchSize;
        if (config.DataParallelDegree < 1 || images % config.DataParallelDegree != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"data parallel degree {config.DataParallelDegree} must divide the {images} images of the request (prompts × images per prompt)");
        if (config.UseCfgParallel && !PipelineLoader.HasClassifierFreeGuidance(folder))
            throw new XDitException(Native.XditStatus.InvalidArgument,
                "FLUX.1 is guidance-distilled: it has no classifier-free guidance to run in parallel (xDiT marks CFG parallel n/a for Flux); drop --use_cfg_parallel");
        if (config.UseCfgParallel && request.GuidanceScale <= 1)
            throw new XDitException(Native.XditStatus.InvalidArgument, "CFG parallelism needs classifier-free guidance (a guidance scale > 1)");
        config.Validate(PipelineLoader.AttentionHeads(folder));
    }

    /// <param name="contextOptions">The options of every rank's CPU context (its thread count is replaced by
    /// the rank's share of the cores).</param>
    /// <param name="progress">Reports world rank 0's progress.</param>
    /// <param name="cancellation">Stops every rank before the same step (<see cref="ProcessMesh.ThrowIfCancelled"/>).</param>
    public static GenerationResult Run(string folder, GenerationRequest request, ParallelConfig config, DType dtype = DType.F32,
        TimeSpan? timeout = null, ContextOptions? contextOptions = null, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        Validate(folder, request, config);
        var images = request.BatchSize;
        var perReplica = images / config.DataParallelDegree;
        var expanded = request.PromptPerImage();
        var threads = Math.Max(1, Environment.ProcessorCount / config.WorldSize);

        var results = InProcessWorld.Run(config.WorldSize, world =>
        {
            var mesh = ProcessMesh.Create(world, config);
            var replica = mesh.DataParallelRank;
            using var context = DeviceContext.Create(Device.Cpu, (contextOptions ?? new ContextOptions()) with { NumThreads = threads });
            using var pipeline = PipelineLoader.Load(folder, context, dtype);
            var part = request with
            {
                Prompts = expanded.Skip(replica * perReplica).Take(perReplica).ToList(),
                ImagesPerPrompt = 1,
                NoiseOffset = replica * perReplica,
                NoiseBatch = images,
            };
            var result = pipeline.Generate(part, mesh, world.Rank == 0 ? progress : null, cancellation);
            return (Replica: replica, Leader: mesh.IsReplicaLeader, Result: result);
        }, timeout);

        var leaders = results.Where(r => r.Leader).OrderBy(r => r.Replica).Select(r => r.Result).ToList();
        var first = leaders[0];
        var latentShape = first.LatentShape.ToArray();
        latentShape[0] = images;
        return new GenerationResult(leaders.SelectMany(r => r.Images).ToList(), first.Width, first.Height,
            leaders.SelectMany(r => r.Latents).ToArray(), latentShape, first.Timings) { ResolutionBin = first.ResolutionBin };
    }
}
