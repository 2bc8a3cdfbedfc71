using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>Loads whichever supported pipeline a diffusers folder holds, by its model_index.json.</summary>
public static class PipelineLoader
{
    public static readonly IReadOnlyList<string> SupportedPipelines =
        ["PixArtAlphaPipeline", "PixArtSigmaPipeline", "StableDiffusion3Pipeline", "FluxPipeline"];

    public static IPipeline Load(string folder, DeviceContext context, DType dtype = DType.F32)
    {
        var className = DiffusersFolder.Open(folder).Index.ClassName;
        return className switch
        {
            "PixArtAlphaPipeline" or "PixArtSigmaPipeline" => PixArtPipeline.Load(folder, context, dtype),
            "StableDiffusion3Pipeline" => SD3Pipeline.Load(folder, context, dtype),
            "FluxPipeline" => FluxPipeline.Load(folder, context, dtype),
            _ => throw new XDitException(Native.XditStatus.Unsupported,
                $"{folder}: {className} is not supported (supported: {string.Join(", ", SupportedPipelines)})"),
        };
    }
}
