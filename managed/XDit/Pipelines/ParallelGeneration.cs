using XDit.Parallel;

namespace XDit.Pipelines;

/// <summary>
/// Runs a PixArt generation on several in-process ranks (threads, each with its own CPU context and its
/// share of the cores): CFG parallelism (the two guidance branches on two ranks) and data parallelism
/// (the batch split across replicas; each replica starts from its rows of the whole batch's noise).
/// The result — images in request order and the final latents — equals the single-rank run's.
/// </summary>
public static class ParallelGeneration
{
    public static GenerationResult Run(string folder, GenerationRequest request, ParallelConfig config, DType dtype = DType.F32,
        TimeSpan? timeout = null)
    {
        var images = request.BatchSize;
        if (config.DataParallelDegree < 1 || images % config.DataParallelDegree != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"data parallel degree {config.DataParallelDegree} must divide the {images} images of the request (prompts × images per prompt)");
        if (config.UseCfgParallel && request.GuidanceScale <= 1)
            throw new XDitException(Native.XditStatus.InvalidArgument, "CFG parallelism needs classifier-free guidance (a guidance scale > 1)");
        var perReplica = images / config.DataParallelDegree;
        var expanded = request.PromptPerImage();
        var threads = Math.Max(1, Environment.ProcessorCount / config.WorldSize);

        var results = InProcessWorld.Run(config.WorldSize, world =>
        {
            var replica = world.Rank / config.CfgDegree;
            var cfgGroup = config.UseCfgParallel ? world.Split(color: replica, key: world.Rank % config.CfgDegree) : null;
            using var context = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = threads });
            using var pipeline = PixArtPipeline.Load(folder, context, dtype);
            var part = request with
            {
                Prompts = expanded.Skip(replica * perReplica).Take(perReplica).ToList(),
                ImagesPerPrompt = 1,
                NoiseOffset = replica * perReplica,
                NoiseBatch = images,
            };
            return (Replica: replica, Leader: cfgGroup is null || cfgGroup.Rank == 0, Result: pipeline.Generate(part, cfgGroup));
        }, timeout);

        var leaders = results.Where(r => r.Leader).OrderBy(r => r.Replica).Select(r => r.Result).ToList();
        var first = leaders[0];
        var latentShape = first.LatentShape.ToArray();
        latentShape[0] = images;
        return new GenerationResult(leaders.SelectMany(r => r.Images).ToList(), first.Width, first.Height,
            leaders.SelectMany(r => r.Latents).ToArray(), latentShape, first.Timings) { ResolutionBin = first.ResolutionBin };
    }
}
