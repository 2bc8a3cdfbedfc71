using XDit.Ops;

namespace XDit.Parallel;

/// <summary>
/// PipeFusion (xDiT's patch pipeline) on the ranks of one branch: the transformer's blocks are split into
/// <see cref="ParallelConfig.PipeFusionDegree"/> stages, one per rank; the latent is cut into row bands
/// (<see cref="Bands"/>) that stream through the stages, and each attention layer attends a band's
/// queries to its buffer of the whole sequence's keys and values (<see cref="PatchAttention"/>): fresh for
/// the bands already computed in this step, one step stale for the rest. The first
/// <see cref="ParallelConfig.WarmupSteps"/> steps run the whole latent as one band, which fills the
/// buffers and equals the single-rank computation. <see cref="PipeFusionRunner"/> runs it.
/// </summary>
public static class PipeFusion
{
    /// <summary>The PipeFusion options against a model of <paramref name="layers"/> transformer blocks;
    /// the message names the option that is wrong and what fits.</summary>
    public static void Validate(ParallelConfig config, int layers)
    {
        var stages = config.PipeFusionDegree;
        if (layers < stages)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"pipefusion_parallel_degree {stages} needs a transformer block per stage; the model has {layers}");
        if (config.NumPipelinePatch < 0)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"num_pipeline_patch is {config.NumPipelinePatch}; it must be at least 1 (0 takes the PipeFusion degree)");
        if (config.WarmupSteps < 1)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"warmup_steps is {config.WarmupSteps}; PipeFusion needs at least 1 whole step to fill its key/value buffers");
        if (config.LayersPerStage is { } perStage &&
            (perStage.Count != stages || perStage.Any(n => n < 1) || perStage.Sum() != layers))
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"attn_layer_num_for_pp [{string.Join(", ", perStage)}] must give each of the {stages} stages at least one block " +
                $"and add up to the model's {layers} transformer blocks");
    }

    /// <summary>The blocks [First, End) of stage <paramref name="stage"/>: <see cref="ParallelConfig.LayersPerStage"/>,
    /// or an even split with the remainder on the first stages.</summary>
    public static (int First, int End) StageLayers(ParallelConfig config, int layers, int stage)
    {
        var stages = config.PipeFusionDegree;
        var counts = config.LayersPerStage ?? Enumerable.Range(0, stages).Select(s => layers / stages + (s < layers % stages ? 1 : 0)).ToList();
        var first = counts.Take(stage).Sum();
        return (first, first + counts[stage]);
    }

    /// <summary>
    /// The row bands of a latent <paramref name="latentRows"/> high, as xDiT cuts them: each band a whole
    /// number of token rows (<paramref name="patchSize"/> latent rows each), the last band the remainder,
    /// so the rounding may leave fewer bands than <see cref="ParallelConfig.PatchCount"/>
    /// (<see cref="RowBandPlan.Adjusted"/>, which the generation reports as a warning).
    /// </summary>
    public static RowBandPlan Bands(long latentRows, ParallelConfig config, int patchSize)
    {
        if (latentRows < patchSize)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"a latent of {latentRows} rows has no token row to pipeline");
        try
        {
            return Layout.RowBands(latentRows, config.PatchCount, patchSize);
        }
        catch (ArgumentException e)
        {
            throw new XDitException(Native.XditStatus.InvalidArgument, $"num_pipeline_patch {config.PatchCount}: {e.Message}");
        }
    }

    /// <summary>The <see cref="PatchBand"/>s of <paramref name="plan"/> (<see cref="Bands"/>) over a token grid
    /// <paramref name="gridRows"/> × <paramref name="gridWidth"/>, top to bottom.</summary>
    internal static List<PatchBand> PatchBands(RowBandPlan plan, long gridRows, long gridWidth, int patchSize)
    {
        var bands = new List<PatchBand>();
        long row = 0;
        foreach (var height in plan.Heights)
        {
            bands.Add(new PatchBand(bands.Count, row, height / patchSize, gridRows, gridWidth, patchSize));
            row += height / patchSize;
        }
        return bands;
    }
}
