namespace XDit.Pipelines;

/// <summary>A loaded text-to-image pipeline: components resident on one context, one generation at a
/// time (the engine queues requests in front of it).</summary>
public interface IPipeline : IDisposable
{
    /// <summary>The context the pipeline computes on.</summary>
    DeviceContext Context { get; }

    /// <summary>Pixels per latent pixel times the patch size: heights and widths must be multiples of it.</summary>
    int SizeMultiple { get; }

    /// <summary>The image size a request gets when it names none.</summary>
    int DefaultImageSize { get; }

    /// <summary>Throws the <see cref="XDitException"/> that <see cref="Generate(GenerationRequest, IProgress{GenerationProgress}?, CancellationToken)"/>
    /// would throw for a request it cannot serve (sizes, steps, options the model does not take), before
    /// any work: a parallel pipeline checks requests here once, instead of letting every rank fail.</summary>
    void ValidateRequest(GenerationRequest request);

    GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default);

    /// <summary>
    /// The same generation as one rank of <paramref name="mesh"/> (every rank of the mesh calls it with
    /// its part of the request): the CFG pair splits the guidance branches, the sequence group splits the
    /// tokens of every transformer pass. Every rank returns the final latents of its replica, which equal
    /// the single-rank run's; only <see cref="ProcessMesh.IsReplicaLeader"/> ranks decode images.
    /// </summary>
    GenerationResult Generate(GenerationRequest request, XDit.Parallel.ProcessMesh mesh, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default);
}
