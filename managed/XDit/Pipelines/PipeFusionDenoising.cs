using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>A pipeline's denoising loop on PipeFusion stages (<see cref="PipeFusionRunner"/>), reporting
/// through the generation's clock: progress and timing per step, warnings, cancellation agreed by every
/// rank once per tick.</summary>
internal static class PipeFusionDenoising
{
    public static Tensor Run(ProcessMesh mesh, IPipeFusionModel pieces, Tensor latents, int steps, long gridRows, long gridWidth, int patchSize,
        StageClock clock, CancellationToken cancellation)
    {
        var context = latents.Context;
        var final = PipeFusionRunner.Run(mesh, pieces, latents, steps, gridRows, gridWidth, patchSize,
            clock.PipelinedStep, () => ProcessMesh.ThrowIfCancelled(mesh, context, cancellation), clock.Warn);
        clock.End($"step {steps}");
        return final;
    }
}
