using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// A scheduler whose step adds fresh standard-normal noise (DDPM, CogVideoX's DPM-Solver). The caller
/// draws the noise, because with PipeFusion a step is several calls on slices of the latent: it draws
/// one tensor of the WHOLE latent's shape per step and passes each slice of the latent with the same
/// slice of the noise, so sliced steps equal the whole-latent step bit for bit.
/// </summary>
/// <remarks>
/// diffusers draws the noise inside <c>step</c> from the pipeline's generator, sometimes more than once
/// (<see cref="NoiseDraws"/>). A pipeline that draws the same number of tensors of the latent's shape
/// from a <see cref="Rng.TorchGenerator"/> seeded like diffusers' generator, and passes the last one,
/// reproduces the noise of a diffusers run with that seed.
/// </remarks>
public interface IStochasticScheduler : IScheduler
{
    /// <summary>How many standard-normal tensors of the latent's shape diffusers draws in step
    /// <paramref name="stepIndex"/> (0 when the step adds no noise); only the last one is used.</summary>
    int NoiseDraws(int stepIndex);

    /// <summary>As <see cref="IScheduler.Step"/>, with the step's <paramref name="noise"/> (a tensor of the
    /// sample's shape; null only when <see cref="NoiseDraws"/> is 0). <see cref="IScheduler.Step"/>
    /// without noise fails for steps that need it.</summary>
    Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, Tensor? noise, int slice = 0);
}
