using XDit.Pipelines;

namespace XDit.Tests;

/// <summary>Diffusers folders of tiny architectures with random weights (f32), written once for a fixture and
/// deleted with it.</summary>
internal sealed class TinyModelFolders : IDisposable
{
    readonly Dictionary<string, string> _folders = [];

    public TinyModelFolders(string purpose, ulong seed, params string[] families)
    {
        foreach (var family in families)
        {
            var folder = Directory.CreateTempSubdirectory($"xdit-{purpose}-{family}").FullName;
            _folders[family] = folder;
            Architectures.WriteRandomFolder(family, folder, seed, DType.F32);
        }
    }

    public string this[string family] => _folders[family];

    public void Dispose()
    {
        foreach (var folder in _folders.Values) Directory.Delete(folder, recursive: true);
        _folders.Clear();
    }
}
