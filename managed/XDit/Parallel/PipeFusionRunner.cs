using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// Runs the denoising loop of one PipeFusion pipeline (<see cref="PipeFusion"/>) as one of its stage
/// ranks. Each tick every stage computes the item the <see cref="PipeFusionSchedule"/> gives it — stage
/// 0 embeds the band's latent rows, each stage runs its blocks, the last stage predicts the band's noise
/// and steps the scheduler on it — and then all stages pass their output on at once with one
/// <see cref="ICommunicator.Shift"/> around the pipeline: hidden states to the next stage, and the
/// band's new latent rows from the last stage back to stage 0 (each tick moves its largest message, so a
/// patch step moves each band's activations once per stage boundary). The last stage owns the latent and its
/// scheduler history (stepped band by band, as slices, also in warmup steps, so the history keeps one
/// shape per slice); at the end it broadcasts the final latent to every stage.
/// </summary>
/// <remarks>The exchange is synchronous: a tick lasts as long as its slowest stage, and sends do not
/// overlap compute (xDiT's do). Balanced stages lose little to it; it keeps the pipeline free of
/// deadlock for any band count, including fewer bands than stages.</remarks>
public static class PipeFusionRunner
{
    /// <param name="latents">This rank's copy of the initial latent (every rank draws the same noise);
    /// the final latent is returned as a new tensor on every stage.</param>
    /// <param name="gridRows">Token rows of the latent.</param>
    /// <param name="gridWidth">Tokens per token row.</param>
    /// <param name="stepStarted">Called when this stage starts a denoising step (progress and timing).</param>
    /// <param name="cancelled">Called once per tick on every rank of the world, which must agree (all
    /// ranks run the same number of ticks): <see cref="ProcessMesh.ThrowIfCancelled"/>.</param>
    /// <param name="warn">Told when the bands had to be fewer than asked for.</param>
    public static Tensor Run(ProcessMesh mesh, IPipeFusionModel model, Tensor latents, int steps, long gridRows, long gridWidth,
        int patchSize, Action<int>? stepStarted = null, Action? cancelled = null, Action<string>? warn = null)
    {
        var config = mesh.Config;
        var pipeline = mesh.Pipeline ?? throw new ArgumentException("the mesh has no PipeFusion stages", nameof(mesh));
        int stage = mesh.Stage, stages = pipeline.Size, last = stages - 1;
        var (first, end) = PipeFusion.StageLayers(config, model.Layers, stage);
        var plan = PipeFusion.Bands(gridRows * patchSize, config, patchSize);
        if (plan.Adjusted)
            warn?.Invoke($"num_pipeline_patch {config.PatchCount}: {gridRows} token rows cut into bands of whole rows make {plan.Heights.Count} " +
                         $"bands of {string.Join(", ", plan.Heights.Select(h => h / patchSize))} rows (xDiT rounds the same way)");
        var bands = PipeFusion.PatchBands(plan, gridRows, gridWidth, patchSize);
        var whole = PatchBand.Whole(gridRows, gridWidth, patchSize);
        var schedule = new PipeFusionSchedule(steps, config.WarmupSteps, bands, whole, stages);

        using var scope = new TensorScope();
        var context = latents.Context;
        var current = latents.Clone();
        // What stage s sends at a tick: its item's hidden states, or from the last stage the item's new latent rows.
        long Outgoing(int s, int tick) => schedule.At(s, tick) is not { } item ? 0
            : s == last ? LatentElements(model, current, item.Band) : Shapes.Product(model.HiddenShape(item.Band));
        // Every stage shifts the same length at a tick (the largest message of that tick); a band moves its own size.
        var tickLengths = Enumerable.Range(0, schedule.Ticks).Select(t => Enumerable.Range(0, stages).Max(s => Outgoing(s, t))).ToArray();
        var send = Tensor.Zeros(context, current.DType, tickLengths.Max());
        var received = Tensor.Zeros(context, current.DType, tickLengths.Max());
        using var buffers = new KeyValueBuffers(mesh.SequenceParallel);
        TensorScope? stepScope = null;
        IPipeFusionStep? step = null;
        var stepIndex = -1;
        try
        {
            for (int tick = 0; tick < schedule.Ticks; tick++)
            {
                cancelled?.Invoke();
                if (schedule.At(stage, tick) is { } item)
                {
                    if (item.Step != stepIndex)
                    {
                        stepScope?.Dispose();
                        stepScope = new TensorScope();
                        stepIndex = item.Step;
                        stepStarted?.Invoke(item.Step);
                        step = model.Step(item.Step);
                    }
                    using var itemScope = new TensorScope();
                    var (band, work) = (item.Band, step!);
                    var hidden = stage == 0
                        ? work.Embed(model.LatentBand(current, band), band)
                        : Message(received, model.HiddenShape(band));
                    hidden = work.Blocks(hidden, band, first, end, buffers);
                    Tensor outgoing;
                    if (stage == last)
                    {
                        var prediction = work.Predict(hidden, band);
                        foreach (var slice in band.IsWhole ? bands : [band])
                        {
                            var sample = model.LatentBand(current, slice);
                            var noise = band.IsWhole ? model.LatentBand(prediction, slice) : prediction;
                            Elementwise.Copy(work.SchedulerStep(noise, sample, slice.Index), sample);
                        }
                        outgoing = model.LatentBand(current, band);
                    }
                    else
                    {
                        outgoing = hidden;
                        if (!Shapes.Equal(outgoing.Shape, model.HiddenShape(band)) || outgoing.DType != send.DType)
                            throw new XDitException(Native.XditStatus.Internal,
                                $"PipeFusion stage {stage} produced {outgoing.DType.Name()} {outgoing.ShapeString} for {band}, not the planned " +
                                $"{send.DType.Name()} [{string.Join(", ", model.HiddenShape(band))}]");
                    }
                    using var slot = send.Narrow(0, 0, outgoing.NumElements).View(outgoing.Shape.ToArray());
                    Elementwise.Copy(outgoing, slot);
                }
                if (stages > 1 && tickLengths[tick] > 0)
                {
                    using var sent = send.Narrow(0, 0, tickLengths[tick]);
                    using var arriving = received.Narrow(0, 0, tickLengths[tick]);
                    pipeline.Shift(sent, arriving);
                }
                if (stage == 0 && schedule.At(last, tick) is { } done)
                {
                    using var rows = model.LatentBand(current, done.Band);
                    using var message = Message(received, rows.Shape.ToArray());
                    Elementwise.Copy(message, rows);
                }
            }
        }
        finally
        {
            stepScope?.Dispose();
        }
        pipeline.Broadcast(current, root: last);
        return current.MoveToOuterScope();
    }

    static long LatentElements(IPipeFusionModel model, Tensor latents, PatchBand band)
    {
        using var rows = model.LatentBand(latents, band);
        return rows.NumElements;
    }

    /// <summary>The first elements of a message buffer, viewed as <paramref name="shape"/>.</summary>
    static Tensor Message(Tensor buffer, long[] shape) => buffer.Narrow(0, 0, Shapes.Product(shape)).View(shape);
}
