using XDit.Parallel;

namespace XDit.Cli;

/// <summary>xDiT's parallel degrees on the command line (generate, bench, serve).</summary>
public static class MeshOptions
{
    public static ParallelConfig Parse(CommandLine options)
    {
        var layers = options.Ints("attn_layer_num_for_pp");
        return new()
        {
            DataParallelDegree = options.Int("data_parallel_degree", 1, min: 1, max: 64),
            UseCfgParallel = options.Flag("use_cfg_parallel"),
            UlyssesDegree = options.Int("ulysses_degree", 1, min: 1, max: 64),
            RingDegree = options.Int("ring_degree", 1, min: 1, max: 64),
            PipeFusionDegree = options.Int("pipefusion_parallel_degree", 1, min: 1, max: 64),
            // xDiT's default: as many patches as stages.
            NumPipelinePatch = options.Int("num_pipeline_patch", 0, min: 1, max: 1024),
            WarmupSteps = options.Int("warmup_steps", 1, min: 1, max: 1000),
            LayersPerStage = layers.Count > 0 ? layers : null,
            UseParallelVae = options.Flag("use_parallel_vae"),
        };
    }
}
