namespace XDit.Parallel;

/// <summary>
/// One rank's place in the mesh of a <see cref="ParallelConfig"/> and the groups it computes with, made
/// once per run. World ranks are numbered as xDiT numbers them, innermost first:
/// <c>rank = (((dp · cfg_degree + cfg) · pipefusion_degree + stage) · ring_degree + ring) · ulysses_degree + ulysses</c>,
/// so a Ulysses group is contiguous ranks (the closest ones, which carry the all-to-alls), a Ring group is
/// strided, and the stages of a pipeline are further apart.
/// Disposing it frees the sub-groups it made (MPI communicators); the world stays the caller's.
/// </summary>
public sealed class ProcessMesh : IDisposable
{
    ProcessMesh(ParallelConfig config, ICommunicator world, ICommunicator? cfg, SequenceParallelGroup? sequenceParallel,
        ICommunicator? pipeline, ICommunicator? vae)
    {
        Config = config;
        World = world;
        Cfg = cfg;
        SequenceParallel = sequenceParallel;
        Pipeline = pipeline;
        Vae = vae;
        var rank = world.Rank;
        UlyssesRank = rank % config.UlyssesDegree;
        rank /= config.UlyssesDegree;
        RingRank = rank % config.RingDegree;
        rank /= config.RingDegree;
        Stage = rank % config.PipeFusionDegree;
        rank /= config.PipeFusionDegree;
        CfgRank = rank % config.CfgDegree;
        DataParallelRank = rank / config.CfgDegree;
    }

    public ParallelConfig Config { get; }
    public ICommunicator World { get; }

    /// <summary>The two ranks of a CFG pair (rank 0 the unconditional branch); null without CFG parallelism.</summary>
    public ICommunicator? Cfg { get; }

    /// <summary>The ranks that share one sequence; null without Ulysses or Ring.</summary>
    public SequenceParallelGroup? SequenceParallel { get; }

    /// <summary>The PipeFusion stages of this rank's branch, in stage order; null without PipeFusion.</summary>
    public ICommunicator? Pipeline { get; }

    public int DataParallelRank { get; }
    public int CfgRank { get; }

    /// <summary>This rank's PipeFusion stage (0 without PipeFusion).</summary>
    public int Stage { get; }
    public int RingRank { get; }
    public int UlyssesRank { get; }

    /// <summary>Every rank of this rank's replica (CFG pair × stages × sequence group), which decode the
    /// image together with the parallel VAE; null without it (or with one rank per replica).</summary>
    public ICommunicator? Vae { get; }

    /// <summary>Rank 0 of its replica (CFG pair, stages and sequence group): the rank that returns the images.</summary>
    public bool IsReplicaLeader => CfgRank == 0 && Stage == 0 && RingRank == 0 && UlyssesRank == 0;

    /// <summary>Whether this rank takes part in decoding: the replica leader, and every rank of the replica
    /// with the parallel VAE.</summary>
    public bool Decodes => IsReplicaLeader || Vae is not null;

    public void Dispose()
    {
        ICommunicator?[] made = [Cfg, SequenceParallel?.All, SequenceParallel?.Ulysses, SequenceParallel?.Ring, Pipeline, Vae];
        foreach (var group in made) (group as IDisposable)?.Dispose();
    }

    /// <summary>
    /// The step boundary: without a mesh, throws when <paramref name="cancellation"/> is cancelled; with
    /// one, every rank of the world learns (one all-reduce) whether any rank's caller cancelled, so all stop
    /// before the same step instead of leaving the others waiting in a collective.
    /// </summary>
    public static void ThrowIfCancelled(ProcessMesh? mesh, DeviceContext context, CancellationToken cancellation)
    {
        if (mesh is null)
        {
            cancellation.ThrowIfCancellationRequested();
            return;
        }
        using var flag = Tensors.Tensor.FromArray(context, [cancellation.IsCancellationRequested ? 1f : 0f], 1);
        mesh.World.AllReduce(flag, ReduceOp.Max);
        if (flag.ToArray<float>()[0] != 0)
            throw new OperationCanceledException("the generation was cancelled on one of its ranks", cancellation);
    }

    /// <summary>Collective over <paramref name="world"/>: every rank builds its groups (the same splits in
    /// the same order on every rank).</summary>
    public static ProcessMesh Create(ICommunicator world, ParallelConfig config)
    {
        ArgumentNullException.ThrowIfNull(world);
        ArgumentNullException.ThrowIfNull(config);
        if (world.Size != config.WorldSize)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"the mesh {config} needs {config.WorldSize} ranks; the world has {world.Size}");
        int sp = config.SequenceParallelDegree, stages = config.PipeFusionDegree, branch = config.RanksPerBranch, rank = world.Rank;
        var spRank = rank % sp;
        var stage = rank / sp % stages;
        var branchRank = rank % branch; // (stage, sequence rank) flattened
        var replica = rank / branch; // (dp, cfg) flattened
        ICommunicator? cfg = null;
        if (config.UseCfgParallel)
        {
            var dp = replica / config.CfgDegree;
            cfg = world.Split(color: dp * branch + branchRank, key: replica % config.CfgDegree);
        }
        SequenceParallelGroup? group = null;
        if (sp > 1)
        {
            var all = world.Split(color: rank / sp, key: spRank);
            var ulysses = world.Split(color: rank / config.UlyssesDegree, key: rank % config.UlyssesDegree);
            var ring = world.Split(color: rank / sp * config.UlyssesDegree + rank % config.UlyssesDegree, key: spRank / config.UlyssesDegree);
            group = new SequenceParallelGroup(all, ulysses, ring);
        }
        var pipeline = stages > 1 ? world.Split(color: replica * sp + spRank, key: stage) : null;
        var perReplica = config.CfgDegree * branch;
        var vae = config.UseParallelVae && perReplica > 1 ? world.Split(color: rank / perReplica, key: rank % perReplica) : null;
        return new ProcessMesh(config, world, cfg, group, pipeline, vae);
    }
}
