using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// A transformer (with its guidance and scheduler) cut into the pieces <see cref="PipeFusionRunner"/>
/// streams bands through: stage 0 embeds a band of the latent, every stage runs its blocks over it, the
/// last stage turns it back into the band's next latent. Every piece works on one band's tokens; the
/// blocks' self-attention goes through the stage's <see cref="KeyValueBuffers"/>.
/// </summary>
public interface IPipeFusionModel
{
    /// <summary>The transformer blocks that the stages split (<see cref="PipeFusion.StageLayers"/>).</summary>
    int Layers { get; }

    /// <summary>The shape of the hidden states that carry <paramref name="band"/> from one stage to the next.</summary>
    long[] HiddenShape(PatchBand band);

    /// <summary>A view of <paramref name="band"/>'s rows of a latent (the whole latent, or a prediction of it).</summary>
    Tensor LatentBand(Tensor latents, PatchBand band);

    /// <summary>Denoising step <paramref name="index"/>: its conditioning, computed once per stage and step
    /// (its tensors join the caller's scope).</summary>
    IPipeFusionStep Step(int index);
}

/// <summary>One denoising step of an <see cref="IPipeFusionModel"/>.</summary>
public interface IPipeFusionStep
{
    /// <summary>Stage 0: the band's latent rows → its hidden states [<see cref="IPipeFusionModel.HiddenShape"/>].</summary>
    Tensor Embed(Tensor latentBand, PatchBand band);

    /// <summary>Blocks [<paramref name="first"/>, <paramref name="end"/>) over the band's hidden states.</summary>
    Tensor Blocks(Tensor hidden, PatchBand band, int first, int end, KeyValueBuffers buffers);

    /// <summary>The last stage: the band's hidden states → the guided prediction for its latent rows (the
    /// shape of <see cref="IPipeFusionModel.LatentBand"/>).</summary>
    Tensor Predict(Tensor hidden, PatchBand band);

    /// <summary>The scheduler step of one band of the latent (scheduler slice <paramref name="slice"/>).</summary>
    Tensor SchedulerStep(Tensor prediction, Tensor sample, int slice);
}
