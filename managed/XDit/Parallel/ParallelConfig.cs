namespace XDit.Parallel;

/// <summary>
/// The parallel degrees of a generation (xDiT's names) and the world size they imply. Ranks are laid out
/// as xDiT lays them out, innermost first: Ulysses (contiguous ranks), Ring (strided by the Ulysses
/// degree), PipeFusion stages, CFG, data parallel (outermost); see <see cref="ProcessMesh"/>.
/// </summary>
public sealed record ParallelConfig
{
    public int DataParallelDegree { get; init; } = 1;
    public bool UseCfgParallel { get; init; }
    public int UlyssesDegree { get; init; } = 1;
    public int RingDegree { get; init; } = 1;

    /// <summary>PipeFusion stages (<see cref="PipeFusion"/>): the transformer's blocks split over this many
    /// ranks, which stream the latent's row bands through them.</summary>
    public int PipeFusionDegree { get; init; } = 1;

    /// <summary>xDiT's <c>num_pipeline_patch</c>: the row bands of the latent; 0 takes xDiT's default,
    /// the PipeFusion degree.</summary>
    public int NumPipelinePatch { get; init; }

    /// <summary>xDiT's <c>warmup_steps</c>: the first steps run whole (no stale keys and values) to fill
    /// PipeFusion's buffers.</summary>
    public int WarmupSteps { get; init; } = 1;

    /// <summary>xDiT's <c>attn_layer_num_for_pp</c>: the transformer blocks of each stage, first to last;
    /// null splits them evenly.</summary>
    public IReadOnlyList<int>? LayersPerStage { get; init; }

    /// <summary>xDiT's <c>--use_parallel_vae</c>: the ranks of each replica decode the image together,
    /// split by rows (<see cref="RowShards"/>).</summary>
    public bool UseParallelVae { get; init; }

    public int CfgDegree => UseCfgParallel ? 2 : 1;

    /// <summary>Ranks that share one sequence: Ulysses × Ring.</summary>
    public int SequenceParallelDegree => UlyssesDegree * RingDegree;

    public int PatchCount => NumPipelinePatch > 0 ? NumPipelinePatch : PipeFusionDegree;

    /// <summary>Ranks that compute one replica's denoising: PipeFusion stages × sequence parallelism.</summary>
    public int RanksPerBranch => PipeFusionDegree * SequenceParallelDegree;

    public int WorldSize => DataParallelDegree * CfgDegree * RanksPerBranch;

    /// <summary>Checks the degrees against a model before anything is loaded: each at least 1, the
    /// attention heads divisible by the Ulysses degree, and the PipeFusion stages against the model's
    /// <paramref name="layers"/> transformer blocks. The message names the wrong degree and what fits.</summary>
    public void Validate(int attentionHeads, int layers)
    {
        foreach (var (name, degree) in new[] { ("data_parallel_degree", DataParallelDegree), ("ulysses_degree", UlyssesDegree),
                     ("ring_degree", RingDegree), ("pipefusion_parallel_degree", PipeFusionDegree) })
            if (degree < 1)
                throw new XDitException(Native.XditStatus.InvalidArgument, $"{name} is {degree}; parallel degrees are at least 1");
        if (PipeFusionDegree > 1) PipeFusion.Validate(this, layers);
        if (attentionHeads % UlyssesDegree != 0)
        {
            var fits = Enumerable.Range(1, attentionHeads).Where(d => attentionHeads % d == 0);
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"ulysses_degree {UlyssesDegree} must divide the model's {attentionHeads} attention heads (degrees that fit: {string.Join(", ", fits)}); " +
                "use ring_degree for the rest of the sequence parallelism");
        }
    }

    public override string ToString() =>
        $"dp {DataParallelDegree} × cfg {CfgDegree} × " +
        (PipeFusionDegree > 1 ? $"pipefusion {PipeFusionDegree} ({PatchCount} patches, {WarmupSteps} warmup steps) × " : "") +
        $"ulysses {UlyssesDegree} × ring {RingDegree}" + (UseParallelVae ? ", parallel VAE" : "");
}
