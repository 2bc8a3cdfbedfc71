namespace XDit.Weights;

/// <summary>One component of a diffusers pipeline as <c>model_index.json</c> lists it:
/// <c>"transformer": ["diffusers", "PixArtTransformer2DModel"]</c> — its subfolder name, the Python
/// library that defines it and the class.</summary>
public sealed record ModelComponent(string Name, string Library, string ClassName);
