using System.Text.Json;

namespace XDit.Weights;

/// <summary>A <c>*.safetensors.index.json</c>: which shard, a file beside the index, holds each tensor.
/// Shard names must be plain file names (an index cannot point outside its folder) and the shards must
/// exist; a tensor listed twice is rejected as a repeated key.</summary>
internal sealed class ShardIndex
{
    ShardIndex(string path, Dictionary<string, string> shardOf)
    {
        Path = path;
        ShardOf = shardOf;
    }

    public string Path { get; }

    /// <summary>Tensor name → full path of its shard.</summary>
    public IReadOnlyDictionary<string, string> ShardOf { get; }

    public static ShardIndex Load(string path)
    {
        var index = JsonConfig.Load(path);
        path = index.Path;
        if (!index.Root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw WeightErrors.Invalid(path, "has no \"weight_map\" object (tensor name → shard file)");
        var folder = System.IO.Path.GetDirectoryName(path)!;
        var shardOf = new Dictionary<string, string>(StringComparer.Ordinal);
        var checkedShards = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw WeightErrors.InvalidTensor(path, entry.Name, $"is mapped to {entry.Value.GetRawText()}, expected a shard file name");
            var file = entry.Value.GetString()!;
            if (file.Length == 0 || file is "." or ".." || file.IndexOfAny(['/', '\\', '\0']) >= 0)
                throw WeightErrors.InvalidTensor(path, entry.Name, $"is mapped to \"{file}\", which is not a file name in the index's folder");
            var shard = System.IO.Path.Combine(folder, file);
            if (checkedShards.Add(file) && !File.Exists(shard))
                throw WeightErrors.Invalid(path, $"names the shard {file} (for tensor '{entry.Name}'), which does not exist in {folder}");
            shardOf.Add(entry.Name, shard);
        }
        return new ShardIndex(path, shardOf);
    }
}
