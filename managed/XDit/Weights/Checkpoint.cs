using XDit.Nn;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>
/// One model's tensors, from a single <c>.safetensors</c> file or from an index and its shards. Shards
/// open on first use, and are then checked against the index: a tensor the index assigns to a shard must
/// be in it, and a shard may hold only the tensors the index assigns to it (a name in two shards is an
/// error, not a silent choice). Loads may run on several threads; dispose after they return. Tensors
/// already loaded outlive the checkpoint. As an <see cref="ITensorSource"/> it feeds
/// <see cref="WeightLoader"/> directly.
/// </summary>
public sealed class Checkpoint : ITensorSource, IDisposable
{
    readonly IReadOnlyDictionary<string, string> _shardOf;
    readonly Dictionary<string, SafetensorsFile> _open = new(StringComparer.Ordinal);
    readonly string[] _names;
    bool _disposed;

    Checkpoint(string path, IReadOnlyDictionary<string, string> shardOf, SafetensorsFile? single)
    {
        Path = path;
        _shardOf = shardOf;
        _names = shardOf.Keys.Order(StringComparer.Ordinal).ToArray();
        IsSharded = single is null;
        if (single is not null) _open.Add(single.Path, single);
    }

    /// <summary>The safetensors file, or the index of a sharded checkpoint.</summary>
    public string Path { get; }

    public bool IsSharded { get; }

    /// <summary>Every tensor name, sorted ordinally.</summary>
    public IReadOnlyList<string> Names => _names;

    public bool Contains(string name) => _shardOf.ContainsKey(name);

    /// <summary>
    /// The checkpoint <paramref name="baseName"/> in <paramref name="folder"/>:
    /// <c>{baseName}.safetensors</c> or <c>{baseName}.safetensors.index.json</c> (with its shards).
    /// <paramref name="baseName"/> is <c>diffusion_pytorch_model</c> for diffusers models and <c>model</c>
    /// for transformers models (text encoders). Both present is an error: one of them is stale.
    /// </summary>
    public static Checkpoint Open(string folder, string baseName)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentException.ThrowIfNullOrEmpty(baseName);
        folder = System.IO.Path.GetFullPath(folder);
        if (!Directory.Exists(folder)) throw WeightErrors.Invalid(folder, "no such folder");
        var single = System.IO.Path.Combine(folder, $"{baseName}.safetensors");
        var index = System.IO.Path.Combine(folder, $"{baseName}.safetensors.index.json");
        var (hasSingle, hasIndex) = (File.Exists(single), File.Exists(index));
        if (hasSingle && hasIndex)
            throw WeightErrors.Invalid(folder, $"holds both {baseName}.safetensors and {baseName}.safetensors.index.json; remove the stale one");
        if (hasSingle) return OpenFile(single);
        if (hasIndex) return OpenIndex(index);
        var pickle = File.Exists(System.IO.Path.Combine(folder, $"{baseName}.bin"))
            ? $" ({baseName}.bin is there, but PyTorch pickle checkpoints are not read: convert it to safetensors)"
            : "";
        throw WeightErrors.Invalid(folder, $"has neither {baseName}.safetensors nor {baseName}.safetensors.index.json{pickle}");
    }

    /// <summary>A checkpoint of one safetensors file, opened (and validated) now.</summary>
    public static Checkpoint OpenFile(string path)
    {
        var file = SafetensorsFile.Open(path);
        return new Checkpoint(file.Path, file.Names.ToDictionary(n => n, _ => file.Path, StringComparer.Ordinal), file);
    }

    /// <summary>A sharded checkpoint: the index is read and its shards' existence checked now; each shard
    /// is opened and validated when first used.</summary>
    public static Checkpoint OpenIndex(string indexPath)
    {
        var index = ShardIndex.Load(indexPath);
        return new Checkpoint(index.Path, index.ShardOf, null);
    }

    /// <summary>The file holding tensor <paramref name="name"/>.</summary>
    public string FileOf(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _shardOf.TryGetValue(name, out var file)
            ? file
            : throw WeightErrors.InvalidTensor(Path, name, $"is not in the checkpoint (it holds {_names.Length} tensors)");
    }

    public TensorInfo Info(string name) => Shard(name).Info(name);

    /// <summary>The stored shape of tensor <paramref name="name"/>.</summary>
    public IReadOnlyList<long> Shape(string name) => Info(name).Shape;

    IReadOnlyCollection<string> ITensorSource.Names => _names;

    Tensor ITensorSource.Load(string name, DeviceContext context, DType dtype) => Load(name, context, dtype);

    /// <summary>Tensor <paramref name="name"/> on <paramref name="context"/>; see
    /// <see cref="SafetensorsFile.Load"/> for dtypes, conversions and zero-copy loading.</summary>
    public Tensor Load(string name, DeviceContext context, DType? dtype = null) => Shard(name).Load(name, context, dtype);

    SafetensorsFile Shard(string name)
    {
        var path = FileOf(name);
        lock (_open)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_open.TryGetValue(path, out var open)) return open;
            var file = SafetensorsFile.Open(path);
            try
            {
                CheckAgainstIndex(file);
            }
            catch
            {
                file.Dispose();
                throw;
            }
            _open.Add(path, file);
            return file;
        }
    }

    void CheckAgainstIndex(SafetensorsFile shard)
    {
        var shardName = System.IO.Path.GetFileName(shard.Path);
        foreach (var name in shard.Names)
        {
            if (!_shardOf.TryGetValue(name, out var assigned))
                throw WeightErrors.InvalidTensor(Path, name, $"is in the shard {shardName} but not listed in the index");
            if (assigned != shard.Path)
                throw WeightErrors.InvalidTensor(Path, name,
                    $"is in the shard {shardName} but the index assigns it to {System.IO.Path.GetFileName(assigned)}: a name in two shards");
        }
        foreach (var (name, assigned) in _shardOf)
            if (assigned == shard.Path && !shard.Contains(name))
                throw WeightErrors.InvalidTensor(Path, name, $"is listed in the index for the shard {shardName}, which does not contain it");
    }

    /// <summary>Closes the open files; tensors loaded without a copy keep their own mappings.</summary>
    public void Dispose()
    {
        lock (_open)
        {
            if (_disposed) return;
            _disposed = true;
            foreach (var file in _open.Values) file.Dispose();
            _open.Clear();
        }
    }

    public override string ToString() => $"Checkpoint({Path}, {_names.Length} tensors)";
}
