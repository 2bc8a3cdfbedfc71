namespace XDit.Pipelines;

/// <summary>Every named architecture the engine can build with random weights (PixArt, SD3, Flux), and the
/// request defaults of each.</summary>
public static class Architectures
{
    public static IReadOnlyList<string> Names =>
        [.. PixArtArchitecture.Names, .. SD3Architecture.Names, .. FluxArchitecture.Names];

    /// <summary>Writes <paramref name="name"/>'s diffusers folder with random weights from
    /// <paramref name="seed"/> and returns the defaults a request to it should start from.</summary>
    public static GenerationRequest WriteRandomFolder(string name, string folder, ulong seed, DType dtype)
    {
        if (PixArtArchitecture.Names.Contains(name))
        {
            var a = PixArtArchitecture.Get(name);
            a.WriteRandomFolder(folder, seed, dtype);
            return new GenerationRequest { MaxSequenceLength = a.MaxSequenceLength, Height = a.DefaultImageSize, Width = a.DefaultImageSize };
        }
        if (SD3Architecture.Names.Contains(name))
        {
            var a = SD3Architecture.Get(name);
            a.WriteRandomFolder(folder, seed, dtype);
            return new GenerationRequest
            {
                MaxSequenceLength = a.MaxSequenceLength, Steps = a.DefaultSteps, GuidanceScale = a.DefaultGuidanceScale,
                Height = a.DefaultImageSize, Width = a.DefaultImageSize,
            };
        }
        if (FluxArchitecture.Names.Contains(name))
        {
            var a = FluxArchitecture.Get(name);
            a.WriteRandomFolder(folder, seed, dtype);
            return new GenerationRequest
            {
                MaxSequenceLength = a.MaxSequenceLength, Steps = a.DefaultSteps, GuidanceScale = a.DefaultGuidanceScale,
                Height = a.DefaultImageSize, Width = a.DefaultImageSize,
            };
        }
        throw new XDitException(Native.XditStatus.InvalidArgument, $"unknown architecture '{name}' (known: {string.Join(", ", Names)})");
    }
}
