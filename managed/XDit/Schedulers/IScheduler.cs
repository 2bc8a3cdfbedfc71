using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// A sampling scheduler: the timesteps of one generation and the update that turns the model's output
/// at step i into the latent of step i + 1, with the timestep spacing and step formulas of diffusers
/// 0.32.2.
/// </summary>
/// <remarks>
/// <para>Unlike diffusers, which counts steps internally, the caller passes the step index: one
/// denoising step may call <see cref="Step"/> several times, once per slice of the latent. PipeFusion
/// steps each row band of the latent as soon as its patch leaves the last pipeline stage, so a step is
/// a set of calls on disjoint slices (views of the whole latent, any strides), told apart by the
/// <c>slice</c> id. The update is pointwise, and a scheduler that keeps history between steps
/// (DPM-Solver++ keeps the previous x̂₀ prediction) keeps it per slice id, so stepping the bands of a
/// latent with ids 0, 1, … gives bit for bit the latent that one whole-latent call gives. Slices must
/// keep their id and shape from step to step.</para>
/// <para>Steps compute in float32 (diffusers upcasts too) with the scalar coefficients computed on the
/// host in double, through <see cref="Ops.Elementwise"/>, so they run on the latent's own device.</para>
/// <para>Schedulers whose step adds noise (DDPM, CogVideoX's DPM-Solver) take it from the caller:
/// see <see cref="IStochasticScheduler"/>. A scheduler is used by one thread at a time. It owns the
/// history tensors it keeps, so dispose it (or call <see cref="Reset"/>) to free them.</para>
/// </remarks>
public interface IScheduler : IDisposable
{
    /// <summary>The timestep of each inference step, in order (what the model is conditioned on): the
    /// integer training timestep for discrete-time schedulers, σ·1000 as a float32 value for flow
    /// matching. Empty until <see cref="SetTimesteps"/>.</summary>
    IReadOnlyList<double> Timesteps { get; }

    /// <summary>The standard deviation of the initial noise: pipelines draw the first latent as
    /// <c>randn · InitNoiseSigma</c>.</summary>
    double InitNoiseSigma { get; }

    /// <summary>Prepares <paramref name="steps"/> inference steps and forgets the history of any previous
    /// generation.</summary>
    void SetTimesteps(int steps);

    /// <summary>The latent after step <paramref name="stepIndex"/>, as a new tensor of the sample's shape
    /// and dtype (the caller owns it; it joins the caller's <see cref="TensorScope"/>, if any).</summary>
    /// <param name="modelOutput">The model's prediction for <paramref name="sample"/> (after guidance).</param>
    /// <param name="stepIndex">Index into <see cref="Timesteps"/>: 0 for the first step.</param>
    /// <param name="sample">The latent at step <paramref name="stepIndex"/>, or one slice of it.</param>
    /// <param name="slice">Which slice <paramref name="sample"/> is (0 for a whole-latent step); only
    /// schedulers with history use it.</param>
    Tensor Step(Tensor modelOutput, int stepIndex, Tensor sample, int slice = 0);

    /// <summary>Forgets the history between steps (and frees its tensors), keeping the timesteps: the
    /// next generation with the same step count starts here.</summary>
    void Reset();
}
