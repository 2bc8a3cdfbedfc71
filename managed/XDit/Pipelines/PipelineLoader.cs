using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>Loads whichever supported pipeline a diffusers folder holds, by its model_index.json.</summary>
public static class PipelineLoader
{
    public static readonly IReadOnlyList<string> SupportedPipelines =
        ["PixArtAlphaPipeline", "PixArtSigmaPipeline", "StableDiffusion3Pipeline", "FluxPipeline"];

    /// <summary>The transformer's attention heads (what a Ulysses degree must divide), read from its
    /// config without loading weights.</summary>
    public static int AttentionHeads(string folder)
    {
        var diffusers = DiffusersFolder.Open(folder);
        var config = diffusers.Config("transformer").Root;
        return diffusers.Index.ClassName switch
        {
            "PixArtAlphaPipeline" or "PixArtSigmaPipeline" => Models.PixArt.PixArtConfig.FromJson(config).NumAttentionHeads,
            "StableDiffusion3Pipeline" => Models.SD3.SD3Config.FromJson(config).NumAttentionHeads,
            "FluxPipeline" => Models.Flux.FluxConfig.FromJson(config).NumAttentionHeads,
            var className => throw Unsupported(folder, className),
        };
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

    public static IPipeline Load(string folder, DeviceContext context, DType dtype = DType.F32)
    {
        var className = DiffusersFolder.Open(folder).Index.ClassName;
        return className switch
        {
            "PixArtAlphaPipeline" or "PixArtSigmaPipeline" => PixArtPipeline.Load(folder, context, dtype),
            "StableDiffusion3Pipeline" => SD3Pipeline.Load(folder, context, dtype),
            "FluxPipeline" => FluxPipeline.Load(folder, context, dtype),
            _ => throw Unsupported(folder, className),
        };
    }
}
