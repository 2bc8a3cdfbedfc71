namespace XDit.Parallel;

/// <summary>
/// The parallel degrees of a generation (xDiT's names) and the world size they imply. Ranks are laid out
/// as xDiT lays them out, innermost first: Ulysses (contiguous ranks), Ring (strided by the Ulysses
/// degree), CFG, data parallel (outermost); see <see cref="ProcessMesh"/>.
/// </summary>
public sealed record ParallelConfig
{
    public int DataParallelDegree { get; init; } = 1;
    public bool UseCfgParallel { get; init; }
    public int UlyssesDegree { get; init; } = 1;
    public int RingDegree { get; init; } = 1;

    /// <summary>xDiT's <c>--use_parallel_vae</c>: the ranks of each replica decode the image together,
    /// split by rows (<see cref="RowShards"/>).</summary>
    public bool UseParallelVae { get; init; }

    public int CfgDegree => UseCfgParallel ? 2 : 1;

    /// <summary>Ranks that share one sequence: Ulysses × Ring.</summary>
    public int SequenceParallelDegree => UlyssesDegree * RingDegree;

    public int WorldSize => DataParallelDegree * CfgDegree * SequenceParallelDegree;

    /// <summary>Checks the degrees against a model before anything is loaded: each at least 1, and the
    /// attention heads divisible by the Ulysses degree. The message names the wrong degree and what fits.</summary>
    public void Validate(int attentionHeads)
    {
        foreach (var (name, degree) in new[] { ("data_parallel_degree", DataParallelDegree), ("ulysses_degree", UlyssesDegree), ("ring_degree", RingDegree) })
            if (degree < 1)
                throw new XDitException(Native.XditStatus.InvalidArgument, $"{name} is {degree}; parallel degrees are at least 1");
        if (attentionHeads % UlyssesDegree != 0)
        {
            var fits = Enumerable.Range(1, attentionHeads).Where(d => attentionHeads % d == 0);
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"ulysses_degree {UlyssesDegree} must divide the model's {attentionHeads} attention heads (degrees that fit: {string.Join(", ", fits)}); " +
                "use ring_degree for the rest of the sequence parallelism");
        }
    }

    public override string ToString() =>
        $"dp {DataParallelDegree} × cfg {CfgDegree} × ulysses {UlyssesDegree} × ring {RingDegree}" + (UseParallelVae ? ", parallel VAE" : "");
}
