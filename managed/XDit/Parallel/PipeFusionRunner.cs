using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// Runs the denoising loop of one PipeFusion pipeline (<see cref="PipeFusion"/>) as one of its stage
/// ranks. Each stage computes the items of the <see cref="PipeFusionSchedule"/> in order — stage 0 embeds
/// the band's latent rows, each stage runs its blocks, the last stage predicts the band's noise and steps
/// the scheduler on it — and hands each result on point to point as soon as it is computed: hidden states
/// to the next stage, and from the last stage the band's new latent rows back to stage 0 (except in the
/// last step, whose rows nobody embeds again). Sends are posted and not waited for, so they travel while
/// the stage computes its next item, and each stage posts the receive for its next input before it
/// computes the current one. The last stage owns the latent and its scheduler history (stepped band by
/// band, as slices, also in warmup steps, so the history keeps one shape per slice); at the end it
/// broadcasts the final latent to every stage.
/// </summary>
/// <remarks>Ranks meet once per tick only when <c>cancelled</c> is given: that agreement on cancellation
/// (a 4-byte all-reduce over the world) is the one synchronisation the messages do not imply. On
/// cancellation every stage first takes the messages already posted to it, so a resident pipeline's
/// channels start the next request empty.</remarks>
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
        var current = latents.Clone();
        using var links = new PipelineLinks(pipeline, model, schedule, current, steps);
        using var buffers = new KeyValueBuffers(mesh.SequenceParallel);
        TensorScope? stepScope = null;
        IPipeFusionStep? step = null;
        var stepIndex = -1;
        var tick = 0;
        try
        {
            for (; tick < schedule.Ticks; tick++)
            {
                cancelled?.Invoke();
                if (schedule.At(stage, tick) is not { } item) continue;
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
                Tensor hidden;
                if (stage == 0)
                {
                    links.AwaitLatentRows(item.After);
                    hidden = work.Embed(model.LatentBand(current, band), band);
                }
                else hidden = links.ReceiveHidden(item);
                hidden = work.Blocks(hidden, band, first, end, buffers);
                if (stage == last)
                {
                    var prediction = work.Predict(hidden, band);
                    foreach (var slice in band.IsWhole ? bands : [band])
                    {
                        var sample = model.LatentBand(current, slice);
                        var noise = band.IsWhole ? model.LatentBand(prediction, slice) : prediction;
                        Elementwise.Copy(work.SchedulerStep(noise, sample, slice.Index), sample);
                    }
                    links.SendLatentRows(item);
                }
                else links.SendHidden(item, hidden);
            }
            links.Finish();
        }
        catch (OperationCanceledException)
        {
            links.Drain(tick);
            throw;
        }
        finally
        {
            stepScope?.Dispose();
        }
        pipeline.Broadcast(current, root: last);
        return current.MoveToOuterScope();
    }
}
