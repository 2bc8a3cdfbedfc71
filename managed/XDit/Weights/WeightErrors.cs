using XDit.Native;

namespace XDit.Weights;

/// <summary>The errors of files the engine does not control (weights, indexes, configs): always an
/// <see cref="XDitException"/> with <see cref="XditStatus.InvalidArgument"/> whose message starts with
/// the file, so that a service can report which download is broken.</summary>
internal static class WeightErrors
{
    public static XDitException Invalid(string path, string message) =>
        new(XditStatus.InvalidArgument, $"{path}: {message}");

    public static XDitException InvalidTensor(string path, string name, string message) =>
        new(XditStatus.InvalidArgument, $"{path}: tensor '{name}' {message}");
}
