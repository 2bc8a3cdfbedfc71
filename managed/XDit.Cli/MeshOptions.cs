using XDit.Parallel;

namespace XDit.Cli;

/// <summary>xDiT's parallel degrees on the command line (generate, bench, serve).</summary>
public static class MeshOptions
{
    public static ParallelConfig Parse(CommandLine options) => new()
    {
        DataParallelDegree = options.Int("data_parallel_degree", 1, min: 1, max: 64),
        UseCfgParallel = options.Flag("use_cfg_parallel"),
        UlyssesDegree = options.Int("ulysses_degree", 1, min: 1, max: 64),
        RingDegree = options.Int("ring_degree", 1, min: 1, max: 64),
        UseParallelVae = options.Flag("use_parallel_vae"),
    };
}
