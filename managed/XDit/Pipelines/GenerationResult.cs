using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>The outcome of a generation: RGB images (row-major, interleaved bytes) unless only latents
/// were asked for, the final latents on the host, and the time each stage took.</summary>
public sealed record GenerationResult(
    IReadOnlyList<byte[]> Images,
    int Width,
    int Height,
    float[] Latents,
    long[] LatentShape,
    IReadOnlyList<StageTiming> Timings);

/// <summary>How long one stage took (<c>text encoder</c>, <c>step 3</c>, <c>vae decode</c>, ...).</summary>
public readonly record struct StageTiming(string Stage, TimeSpan Duration);
