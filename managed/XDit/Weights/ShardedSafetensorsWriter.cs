using System.Text.Json;
using System.Text.RegularExpressions;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>
/// Writes a checkpoint as diffusers and transformers do: tensors in the order added, a new shard
/// whenever the next tensor would push the current one past <see cref="MaxShardBytes"/> (a larger
/// tensor gets a shard of its own), shards named <c>{prefix}-00001-of-00003.safetensors</c> and an index
/// <c>{prefix}.safetensors.index.json</c> = <c>{"metadata": {"total_size": bytes}, "weight_map":
/// {name: shard}}</c>. A checkpoint that fits one shard is written as <c>{prefix}.safetensors</c>
/// without an index, as they do. The prefix is <c>diffusion_pytorch_model</c> for diffusers models and
/// <c>model</c> for transformers models (text encoders).
/// </summary>
public sealed class ShardedSafetensorsWriter
{
    readonly List<PendingTensor> _tensors = [];
    readonly HashSet<string> _names = new(StringComparer.Ordinal);

    public ShardedSafetensorsWriter(string prefix, long maxShardBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        if (prefix.IndexOfAny(['/', '\\']) >= 0) throw new ArgumentException($"the prefix '{prefix}' must be a file name, not a path", nameof(prefix));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxShardBytes);
        Prefix = prefix;
        MaxShardBytes = maxShardBytes;
    }

    public string Prefix { get; }
    public long MaxShardBytes { get; }

    /// <summary>Every shard's <c>__metadata__</c>.</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public string IndexFileName => $"{Prefix}.safetensors.index.json";

    public ShardedSafetensorsWriter Add(string name, Tensor tensor)
    {
        CheckNew(name);
        _tensors.Add(PendingTensor.FromTensor(name, tensor));
        return this;
    }

    public ShardedSafetensorsWriter Add(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> bytes)
    {
        CheckNew(name);
        _tensors.Add(PendingTensor.FromBytes(name, dtype, shape, bytes));
        return this;
    }

    void CheckNew(string name)
    {
        if (!_names.Add(SafetensorsWriter.CheckName(name))) throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
    }

    /// <summary>Writes the shards (and the index, for more than one) into <paramref name="folder"/>,
    /// removes files of an earlier save under this prefix that the new set does not include (stale
    /// shards, or a single file where there now is an index, or the reverse), and returns the names of
    /// the files written.</summary>
    public IReadOnlyList<string> Save(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        var shards = Split();
        var names = shards.Count == 1
            ? [$"{Prefix}.safetensors"]
            : Enumerable.Range(1, shards.Count).Select(i => $"{Prefix}-{i:D5}-of-{shards.Count:D5}.safetensors").ToList();
        for (int i = 0; i < shards.Count; i++)
        {
            var writer = new SafetensorsWriter();
            foreach (var (key, value) in Metadata) writer.Metadata[key] = value;
            foreach (var tensor in shards[i]) writer.Add(tensor);
            writer.Save(Path.Combine(folder, names[i]));
        }
        var written = new List<string>(names);
        if (shards.Count > 1)
        {
            WriteIndex(Path.Combine(folder, IndexFileName), shards, names);
            written.Add(IndexFileName);
        }
        RemoveStale(folder, written);
        return written;
    }

    List<List<PendingTensor>> Split()
    {
        var shards = new List<List<PendingTensor>> { new() };
        long size = 0;
        foreach (var tensor in _tensors)
        {
            if (shards[^1].Count > 0 && size + tensor.ByteLength > MaxShardBytes)
            {
                shards.Add([]);
                size = 0;
            }
            shards[^1].Add(tensor);
            size += tensor.ByteLength;
        }
        return shards;
    }

    void WriteIndex(string path, List<List<PendingTensor>> shards, IReadOnlyList<string> names)
    {
        var map = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
            foreach (var tensor in shards[i]) map[tensor.Name] = names[i];
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", _tensors.Sum(t => t.ByteLength));
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, file) in map) json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
        File.WriteAllBytes(path, stream.ToArray());
    }

    void RemoveStale(string folder, List<string> written)
    {
        var ours = new Regex($"^{Regex.Escape(Prefix)}(-[0-9]{{5}}-of-[0-9]{{5}})?\\.safetensors(\\.index\\.json)?$");
        foreach (var file in Directory.EnumerateFiles(folder))
        {
            var name = Path.GetFileName(file);
            if (ours.IsMatch(name) && !written.Contains(name)) File.Delete(file);
        }
    }
}
