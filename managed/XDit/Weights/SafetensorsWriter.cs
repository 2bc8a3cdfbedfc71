using System.Text.Json;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>
/// Writes one <c>.safetensors</c> file: the header lists names sorted ordinally (with
/// <see cref="Metadata"/> as <c>__metadata__</c> when non-empty) and is padded with spaces to a multiple
/// of 8 bytes; the data follows back to back, ordered by element size (largest first) and then by name,
/// so that every tensor starts aligned to its element size and loads without a copy (the reference
/// writer orders by dtype for the same reason). Tensors are read when <see cref="Save"/> runs: keep them alive until then.
/// The file appears complete or not at all (written beside the target, then renamed over it).
/// </summary>
public sealed class SafetensorsWriter
{
    readonly Dictionary<string, PendingTensor> _tensors = new(StringComparer.Ordinal);

    /// <summary>The header's <c>__metadata__</c>; diffusers and transformers write <c>{"format": "pt"}</c>.</summary>
    public IDictionary<string, string> Metadata { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    public int Count => _tensors.Count;

    public SafetensorsWriter Add(string name, Tensor tensor) => Add(PendingTensor.FromTensor(CheckName(name), tensor));

    /// <summary>Adds raw elements (C order, little-endian) of any safetensors dtype.</summary>
    public SafetensorsWriter Add(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> bytes) =>
        Add(PendingTensor.FromBytes(CheckName(name), dtype, shape, bytes));

    internal SafetensorsWriter Add(PendingTensor tensor)
    {
        if (!_tensors.TryAdd(tensor.Name, tensor))
            throw new ArgumentException($"tensor '{tensor.Name}' was already added", nameof(tensor));
        return this;
    }

    /// <summary>A name a header can hold: <c>__metadata__</c> is reserved.</summary>
    internal static string CheckName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved for the header's metadata", nameof(name));
        return name;
    }

    public void Save(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = Path.GetFullPath(path);
        foreach (var (key, value) in Metadata)
            if (value is null) throw new InvalidOperationException($"metadata '{key}' is null; safetensors metadata values are strings");
        var order = _tensors.Values
            .OrderByDescending(t => t.DType.ElementSize())
            .ThenBy(t => t.Name, StringComparer.Ordinal)
            .ToArray();
        var header = Header(order);
        var temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> length = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
                stream.Write(length);
                stream.Write(header);
                foreach (var tensor in order) tensor.WriteTo(stream);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    /// <summary>The UTF-8 JSON header, space-padded to a multiple of 8 bytes.</summary>
    byte[] Header(PendingTensor[] dataOrder)
    {
        var offsets = new Dictionary<string, (long Begin, long End)>(StringComparer.Ordinal);
        long position = 0;
        foreach (var t in dataOrder)
        {
            offsets[t.Name] = (position, position + t.ByteLength);
            position += t.ByteLength;
        }
        using var json = new MemoryStream();
        using (var writer = new Utf8JsonWriter(json))
        {
            writer.WriteStartObject();
            if (Metadata.Count > 0)
            {
                writer.WriteStartObject("__metadata__");
                foreach (var (key, value) in Metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) writer.WriteString(key, value);
                writer.WriteEndObject();
            }
            foreach (var name in _tensors.Keys.Order(StringComparer.Ordinal))
            {
                var t = _tensors[name];
                writer.WriteStartObject(name);
                writer.WriteString("dtype", t.DType.HeaderName());
                writer.WriteStartArray("shape");
                foreach (var d in t.Shape) writer.WriteNumberValue(d);
                writer.WriteEndArray();
                writer.WriteStartArray("data_offsets");
                writer.WriteNumberValue(offsets[name].Begin);
                writer.WriteNumberValue(offsets[name].End);
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        var padding = (int)((8 - json.Length % 8) % 8);
        for (int i = 0; i < padding; i++) json.WriteByte((byte)' ');
        return json.ToArray();
    }
}
