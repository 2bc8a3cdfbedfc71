namespace XDit.Parallel;

/// <summary>
/// Predicts a mesh's time per denoising step on devices as fast as the one a single-rank step was
/// measured on, joined by a <see cref="LinkModel"/> (<c>DESIGN.md</c> §5b): each rank's share of the
/// step's computation — the batch split by data parallelism and CFG, the tokens by Ulysses × Ring, the
/// blocks by PipeFusion stages, whose schedule is followed tick by tick (warmup steps pass the stages
/// one after another, bands stream through them) — plus the time its communication takes on the link.
/// Communication is not overlapped with compute (this engine's collectives are synchronous), and the
/// replicated work of sequence parallelism (text, norms of replicated tokens) is taken as negligible.
/// </summary>
public static class ScalingModel
{
    /// <param name="singleRankStep">One denoising step of the whole request on one device.</param>
    /// <param name="communicationPerStep">What one rank sends in one steady-state step (measured with
    /// <see cref="CommunicationCounter"/>).</param>
    /// <param name="steps">The generation's steps (PipeFusion's warmup, fill and drain are spread over them).</param>
    /// <param name="tokenRows">Token rows of the latent (what PipeFusion cuts into bands).</param>
    public static TimeSpan StepTime(ParallelConfig mesh, TimeSpan singleRankStep, IReadOnlyDictionary<string, CollectiveVolume> communicationPerStep,
        LinkModel link, int steps, long tokenRows)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        ArgumentNullException.ThrowIfNull(communicationPerStep);
        ArgumentNullException.ThrowIfNull(link);
        var perRank = singleRankStep / (mesh.DataParallelDegree * mesh.CfgDegree * mesh.SequenceParallelDegree);
        var compute = mesh.PipeFusionDegree == 1 ? perRank : PipelinedStep(mesh, perRank, steps, tokenRows);
        return communicationPerStep.Values.Aggregate(compute, (total, volume) => total + link.Time(volume));
    }

    /// <summary>A tick lasts as long as its largest item: a stage's share of the blocks (1/stages) times the
    /// item's share of the tokens; the step time is the ticks' total over the steps.</summary>
    static TimeSpan PipelinedStep(ParallelConfig mesh, TimeSpan wholeStep, int steps, long tokenRows)
    {
        var stages = mesh.PipeFusionDegree;
        var bands = PipeFusion.PatchBands(PipeFusion.Bands(tokenRows, mesh, patchSize: 1), tokenRows, 1, 1);
        var schedule = new PipeFusionSchedule(steps, Math.Min(mesh.WarmupSteps, steps), bands, PatchBand.Whole(tokenRows, 1, 1), stages);
        var ticks = Enumerable.Range(0, schedule.Ticks)
            .Sum(tick => Enumerable.Range(0, stages).Max(s => schedule.At(s, tick) is { } item ? (double)item.Band.Tokens / tokenRows : 0));
        return wholeStep * (ticks / stages / steps);
    }
}
