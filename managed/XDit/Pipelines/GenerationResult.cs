using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>The outcome of a generation: RGB images (row-major, interleaved bytes) of the requested
/// <see cref="Width"/>×<see cref="Height"/> unless only latents were asked for, the final latents on the
/// host, the time each stage took, and the aspect-ratio bin the model generated at when resolution
/// binning applied (null otherwise); the latents are at the bin's size then, not the requested one.</summary>
public sealed record GenerationResult(
    IReadOnlyList<byte[]> Images,
    int Width,
    int Height,
    float[] Latents,
    long[] LatentShape,
    IReadOnlyList<StageTiming> Timings)
{
    /// <summary>The aspect-ratio bin the model generated at, when resolution binning applied.</summary>
    public AspectRatioBin? ResolutionBin { get; init; }

    /// <summary>What the generation adjusted and carried on with (as xDiT logs it): for example fewer
    /// PipeFusion bands than <c>num_pipeline_patch</c> asked for.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>How long one stage took (<c>text encoder</c>, <c>step 3</c>, <c>vae decode</c>, ...).</summary>
public readonly record struct StageTiming(string Stage, TimeSpan Duration);
