namespace XDit.Pipelines;

/// <summary>One text-to-image request, with the defaults of xDiT's and diffusers' PixArt pipelines.</summary>
public sealed record GenerationRequest
{
    public IReadOnlyList<string> Prompts { get; init; } = ["A small cactus with a happy face in the Sahara desert."];
    public string NegativePrompt { get; init; } = "";
    /// <summary>Image height and width in pixels; multiples of the VAE factor times the patch size.</summary>
    public int Height { get; init; } = 1024;
    public int Width { get; init; } = 1024;
    public int Steps { get; init; } = 20;
    /// <summary>Classifier-free guidance scale; values ≤ 1 turn guidance off (one model pass per step).</summary>
    public double GuidanceScale { get; init; } = 4.5;
    public ulong Seed { get; init; } = 42;
    public int ImagesPerPrompt { get; init; } = 1;
    /// <summary>Caption tokens; 0 = the pipeline's own (120 for PixArt-α, 300 for PixArt-Σ).</summary>
    public int MaxSequenceLength { get; init; }
    /// <summary>Skip the VAE and return only the final latents.</summary>
    public bool LatentsOnly { get; init; }
}

/// <summary>What a generation reports while it runs.</summary>
public readonly record struct GenerationProgress(string Stage, int Step, int Steps, TimeSpan Elapsed);
