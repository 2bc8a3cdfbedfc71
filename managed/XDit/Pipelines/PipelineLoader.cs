using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>Loads whichever supported pipeline a diffusers folder holds, by its model_index.json.</summary>
public static class PipelineLoader
{
    public static readonly IReadOnlyList<string> SupportedPipelines =
        ["PixArtAlphaPipeline", "PixArtSigmaPipeline", "StableDiffusion3Pipeline", "FluxPipeline"];

    /// <summary>What a parallel mesh must fit in the transformer, read from its config without loading
    /// weights: its attention heads (what a Ulysses degree must divide), its blocks (what PipeFusion splits
    /// into stages; Flux's double and single blocks together) and the latent rows of one token row.</summary>
    public static (int AttentionHeads, int Layers, int PatchSize) TransformerShape(string folder)
    {
        var diffusers = DiffusersFolder.Open(folder);
        var config = diffusers.Config("transformer").Root;
        switch (diffusers.Index.ClassName)
        {
            case "PixArtAlphaPipeline" or "PixArtSigmaPipeline":
                var pixart = Models.PixArt.PixArtConfig.FromJson(config);
                return (pixart.NumAttentionHeads, pixart.NumLayers, pixart.PatchSize);
            case "StableDiffusion3Pipeline":
                var sd3 = Models.SD3.SD3Config.FromJson(config);
                return (sd3.NumAttentionHeads, sd3.NumLayers, sd3.PatchSize);
            case "FluxPipeline":
                var flux = Models.Flux.FluxConfig.FromJson(config);
                return (flux.NumAttentionHeads, flux.NumLayers + flux.NumSingleLayers, FluxPipeline.PackedPatch);
            case var className:
                throw Unsupported(folder, className);
        }
    }

    /// <summary>The image size a request gets when it names none (the pipeline's
    /// <see cref="IPipeline.DefaultImageSize"/>), read from the configs without loading weights.</summary>
    public static int DefaultImageSize(string folder)
    {
        var diffusers = DiffusersFolder.Open(folder);
        var className = diffusers.Index.ClassName;
        if (className == "FluxPipeline") return FluxPipeline.DefaultSize;
        var vaeFactor = VaeScaleFactor(folder);
        var config = diffusers.Config("transformer").Root;
        return vaeFactor * className switch
        {
            "PixArtAlphaPipeline" or "PixArtSigmaPipeline" => Models.PixArt.PixArtConfig.FromJson(config).SampleSize,
            "StableDiffusion3Pipeline" => Models.SD3.SD3Config.FromJson(config).SampleSize,
            _ => throw Unsupported(folder, className),
        };
    }

    /// <summary>Image pixels per latent pixel, read from the VAE's config.</summary>
    public static int VaeScaleFactor(string folder) =>
        Models.Vae.AutoencoderKLConfig.FromJson(DiffusersFolder.Open(folder).Config("vae").Root).ScaleFactor;

    /// <summary>Whether the pipeline takes classifier-free guidance (Flux dev/schnell are guidance-distilled).</summary>
    public static bool HasClassifierFreeGuidance(string folder) => DiffusersFolder.Open(folder).Index.ClassName != "FluxPipeline";

    static XDitException Unsupported(string folder, string className) => new(Native.XditStatus.Unsupported,
        $"{folder}: {className} is not supported (supported: {string.Join(", ", SupportedPipelines)})");

    /// <param name="shared">Weights shared with other pipelines loaded with it (in-process CPU ranks), or null.</param>
    public static IPipeline Load(string folder, DeviceContext context, DType dtype = DType.F32, SharedWeights? shared = null)
    {
        var className = DiffusersFolder.Open(folder).Index.ClassName;
        return className switch
        {
            "PixArtAlphaPipeline" or "PixArtSigmaPipeline" => PixArtPipeline.Load(folder, context, dtype, shared),
            "StableDiffusion3Pipeline" => SD3Pipeline.Load(folder, context, dtype, shared),
            "FluxPipeline" => FluxPipeline.Load(folder, context, dtype, shared),
            _ => throw Unsupported(folder, className),
        };
    }
}
