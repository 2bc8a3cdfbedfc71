namespace XDit.Pipelines;

/// <summary>One text-to-image request, with the defaults of xDiT's and diffusers' PixArt pipelines.</summary>
public sealed record GenerationRequest
{
    public IReadOnlyList<string> Prompts { get; init; } = ["A small cactus with a happy face in the Sahara desert."];
    public string NegativePrompt { get; init; } = "";
    /// <summary>Image height and width in pixels: multiples of the VAE factor times the patch size, unless
    /// resolution binning applies (then any positive size; the model generates at the bin).</summary>
    public int Height { get; init; } = 1024;
    public int Width { get; init; } = 1024;
    public int Steps { get; init; } = 20;
    /// <summary>Classifier-free guidance scale; values ≤ 1 turn guidance off (one model pass per step).</summary>
    public double GuidanceScale { get; init; } = 4.5;
    public ulong Seed { get; init; } = 42;
    public int ImagesPerPrompt { get; init; } = 1;
    /// <summary>Caption tokens; 0 = the pipeline's own (120 for PixArt-α, 300 for PixArt-Σ).</summary>
    public int MaxSequenceLength { get; init; }
    /// <summary>Data parallelism: this request is rows [offset, offset + batch) of a generation of
    /// <see cref="NoiseBatch"/> images, whose initial noise is drawn for the whole batch (so that every
    /// replica starts from the numbers the single-rank run would). 0 = this request is the whole batch.</summary>
    internal int NoiseOffset { get; init; }

    internal int NoiseBatch { get; init; }

    /// <summary>Skip the VAE and return only the final latents.</summary>
    public bool LatentsOnly { get; init; }
    /// <summary>PixArt's <c>use_resolution_binning</c>, on by default as in diffusers: generate at the nearest
    /// aspect-ratio bin of the transformer's training size (<see cref="AspectRatioBins"/>) and resize the
    /// decoded images back to <see cref="Height"/>×<see cref="Width"/> (latents stay at the bin's size).
    /// Models whose sample size has no table (the built-in tiny model) generate at the requested size;
    /// pipelines without binning (SD3, Flux) ignore it.</summary>
    public bool UseResolutionBinning { get; init; } = true;

    /// <summary>Capture one denoising step as a graph and replay it for the rest (xDiT's <c>--use_cuda_graph</c>):
    /// on CUDA one launch per step instead of hundreds, on the CPU the recorded op calls without their
    /// managed overhead; the latents are the same to the bit. Not with sequence parallelism or PipeFusion
    /// (see <see cref="StepGraph"/>).</summary>
    public bool UseGraph { get; init; }

    /// <summary>Images this request makes: every prompt <see cref="ImagesPerPrompt"/> times.</summary>
    public int BatchSize => Prompts.Count * ImagesPerPrompt;

    /// <summary>The prompt of each image, in batch order: each prompt repeated <see cref="ImagesPerPrompt"/>
    /// times in a row, as diffusers repeats its embeddings.</summary>
    public List<string> PromptPerImage() => Prompts.SelectMany(p => Enumerable.Repeat(p, ImagesPerPrompt)).ToList();
}

/// <summary>What a generation reports while it runs.</summary>
public readonly record struct GenerationProgress(string Stage, int Step, int Steps, TimeSpan Elapsed);
