using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace XDit.Tests;

/// <summary>
/// The tensors of one <c>.safetensors</c> file of the golden data, read whole into memory: a u64
/// little-endian header length, a JSON header mapping each name to dtype, shape and data offsets, then
/// the raw little-endian data. Test support only: it checks just enough to give clear failures on the
/// trusted golden files (offsets inside the data, byte count matching dtype and shape); the engine's own
/// safetensors reader, with full validation, is a separate component.
/// </summary>
internal sealed class GoldenTensors
{
    public sealed record Entry(string DType, long[] Shape, byte[] Data);

    readonly Dictionary<string, Entry> _entries;

    GoldenTensors(string path, Dictionary<string, Entry> entries)
    {
        FilePath = path;
        _entries = entries;
    }

    public string FilePath { get; }

    /// <summary>The folder of golden case <paramref name="name"/> in <c>../shared/golden</c> beside the
    /// repository; the calling test is ignored (reported as skipped) when the golden data is absent.</summary>
    public static string CaseFolder(string name)
    {
        var folder = Path.GetFullPath(Path.Combine(AbiTests.RepositoryRoot(), "..", "shared", "golden", name));
        if (!Directory.Exists(folder)) Assert.Ignore($"the golden data is not installed ({folder} is missing)");
        return folder;
    }

    /// <summary>One F32 tensor of a file, with its shape.</summary>
    public static (float[] Values, long[] Shape) ReadF32(string file, string name)
    {
        var tensors = Load(file);
        return (tensors.F32(name), tensors[name].Shape);
    }

    public IReadOnlyCollection<string> Names => _entries.Keys;

    public static GoldenTensors Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new InvalidDataException($"{path}: {bytes.Length} bytes, too short for a safetensors header");
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLength > (ulong)(bytes.Length - 8))
            throw new InvalidDataException($"{path}: header of {headerLength} bytes in a file of {bytes.Length}");
        var dataStart = 8 + (int)headerLength;
        var dataLength = bytes.Length - dataStart;

        var entries = new Dictionary<string, Entry>();
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)headerLength));
        foreach (var property in header.RootElement.EnumerateObject())
        {
            if (property.Name == "__metadata__") continue;
            var json = property.Value;
            var dtype = json.GetProperty("dtype").GetString()!;
            var shape = json.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = json.GetProperty("data_offsets").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            if (offsets.Length != 2 || offsets[0] < 0 || offsets[0] > offsets[1] || offsets[1] > dataLength)
                throw new InvalidDataException($"{path}: {property.Name} has data_offsets [{string.Join(", ", offsets)}] outside {dataLength} data bytes");
            var expected = shape.Aggregate(1L, (n, d) => n * d) * ElementSize(dtype, path, property.Name);
            if (offsets[1] - offsets[0] != expected)
                throw new InvalidDataException(
                    $"{path}: {property.Name} ({dtype} [{string.Join(", ", shape)}]) spans {offsets[1] - offsets[0]} bytes, not {expected}");
            var data = bytes.AsSpan(dataStart + (int)offsets[0], (int)expected).ToArray();
            entries.Add(property.Name, new Entry(dtype, shape, data));
        }
        return new GoldenTensors(path, entries);
    }

    public Entry this[string name] =>
        _entries.TryGetValue(name, out var entry)
            ? entry
            : throw new KeyNotFoundException($"{FilePath} has no tensor {name} (it has {string.Join(", ", _entries.Keys)})");

    public float[] F32(string name) => Values<float>(name, "F32");
    public double[] F64(string name) => Values<double>(name, "F64");
    public long[] I64(string name) => Values<long>(name, "I64");

    /// <summary>Any F32, F64 or I64 tensor as floats.</summary>
    public float[] Floats(string name) => this[name].DType switch
    {
        "F32" => F32(name),
        "F64" => Array.ConvertAll(F64(name), v => (float)v),
        "I64" => Array.ConvertAll(I64(name), v => (float)v),
        var other => throw new InvalidDataException($"{FilePath}: {name} is {other}, not a float or integer tensor"),
    };

    public long[] Shape(string name) => this[name].Shape;

    /// <summary>The elements, reinterpreted from little-endian bytes (this runs on little-endian hosts only).</summary>
    T[] Values<T>(string name, string dtype) where T : unmanaged
    {
        var entry = this[name];
        if (entry.DType != dtype)
            throw new InvalidDataException($"{FilePath}: {name} is {entry.DType} [{string.Join(", ", entry.Shape)}], not {dtype}");
        return MemoryMarshal.Cast<byte, T>(entry.Data).ToArray();
    }

    static long ElementSize(string dtype, string path, string name) => dtype switch
    {
        "F64" or "I64" or "U64" => 8,
        "F32" or "I32" or "U32" => 4,
        "F16" or "BF16" or "I16" or "U16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new InvalidDataException($"{path}: {name} has the unknown dtype {dtype}"),
    };
}
