using System.Text.Json;

namespace XDit.Weights;

/// <summary>
/// The JSON header of a safetensors file, validated completely: an object whose entries are either
/// <c>"__metadata__"</c> (a string → string map) or tensors <c>{"dtype", "shape", "data_offsets"}</c>
/// whose byte ranges lie in the data section, match dtype × shape and do not overlap. Read with a
/// streaming reader because <see cref="JsonDocument"/> silently accepts a name given twice, and a
/// repeated tensor name would make which bytes a name means depend on the parser.
/// </summary>
internal sealed class SafetensorsHeader
{
    /// <summary>The largest header accepted, as the reference implementation's limit: real headers are a
    /// few hundred kilobytes, and this bounds what a hostile length field can make the reader touch.</summary>
    public const long MaxBytes = 100_000_000;

    /// <summary>More dimensions than any real tensor has; it bounds what a hostile shape costs.</summary>
    public const int MaxRank = 64;

    const string MetadataKey = "__metadata__";

    SafetensorsHeader(Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Parses and validates <paramref name="json"/> for a data section of
    /// <paramref name="dataLength"/> bytes; every problem is an <see cref="XDitException"/> naming
    /// <paramref name="path"/> and, where there is one, the tensor.</summary>
    public static SafetensorsHeader Parse(ReadOnlySpan<byte> json, long dataLength, string path)
    {
        var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = 16 });
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw WeightErrors.Invalid(path, $"the header is {Describe(reader.TokenType)}, not a JSON object");
            var seenMetadata = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = ReadString(ref reader, path);
                reader.Read();
                if (name == MetadataKey)
                {
                    if (seenMetadata) throw WeightErrors.Invalid(path, "the header has __metadata__ twice");
                    seenMetadata = true;
                    ReadMetadata(ref reader, metadata, path);
                    continue;
                }
                if (tensors.ContainsKey(name))
                    throw WeightErrors.InvalidTensor(path, name, "appears twice in the header");
                tensors.Add(name, ReadTensor(ref reader, name, dataLength, path));
            }
            // Only whitespace (the padding) may follow the object; anything else throws here.
            if (reader.Read())
                throw WeightErrors.Invalid(path, $"unexpected {Describe(reader.TokenType)} after the header object");
        }
        catch (JsonException e)
        {
            throw WeightErrors.Invalid(path, $"the header is not valid JSON: {e.Message}");
        }
        CheckNoOverlap(tensors.Values, path);
        return new SafetensorsHeader(tensors, metadata);
    }

    static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata, string path)
    {
        if (reader.TokenType == JsonTokenType.Null) return;
        if (reader.TokenType != JsonTokenType.StartObject)
            throw WeightErrors.Invalid(path, $"__metadata__ is {Describe(reader.TokenType)}, expected an object of strings");
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var key = ReadString(ref reader, path);
            reader.Read();
            if (reader.TokenType != JsonTokenType.String)
                throw WeightErrors.Invalid(path, $"__metadata__ entry '{key}' is {Describe(reader.TokenType)}, expected a string");
            if (!metadata.TryAdd(key, ReadString(ref reader, path)))
                throw WeightErrors.Invalid(path, $"__metadata__ has the key '{key}' twice");
        }
    }

    static TensorInfo ReadTensor(ref Utf8JsonReader reader, string name, long dataLength, string path)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
            throw WeightErrors.InvalidTensor(path, name, $"is {Describe(reader.TokenType)}, expected an object with dtype, shape and data_offsets");
        SafetensorsDType? dtype = null;
        long[]? shape = null;
        long[]? offsets = null;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = ReadString(ref reader, path);
            reader.Read();
            switch (field)
            {
                case "dtype":
                    if (dtype is not null) throw WeightErrors.InvalidTensor(path, name, "has 'dtype' twice");
                    dtype = ReadDType(ref reader, name, path);
                    break;
                case "shape":
                    if (shape is not null) throw WeightErrors.InvalidTensor(path, name, "has 'shape' twice");
                    shape = ReadIntegers(ref reader, name, field, MaxRank, path);
                    break;
                case "data_offsets":
                    if (offsets is not null) throw WeightErrors.InvalidTensor(path, name, "has 'data_offsets' twice");
                    offsets = ReadIntegers(ref reader, name, field, 2, path);
                    break;
                default:
                    reader.Skip(); // unknown fields carry no meaning for the data, as in the reference reader
                    break;
            }
        }
        if (dtype is null) throw WeightErrors.InvalidTensor(path, name, "has no 'dtype'");
        if (shape is null) throw WeightErrors.InvalidTensor(path, name, "has no 'shape'");
        if (offsets is null) throw WeightErrors.InvalidTensor(path, name, "has no 'data_offsets'");
        return Validate(name, dtype.Value, shape, offsets, dataLength, path);
    }

    static SafetensorsDType ReadDType(ref Utf8JsonReader reader, string name, string path)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw WeightErrors.InvalidTensor(path, name, $"has a dtype that is {Describe(reader.TokenType)}, expected a string");
        var text = ReadString(ref reader, path);
        return SafetensorsDTypes.TryParseHeaderName(text, out var dtype)
            ? dtype
            : throw WeightErrors.InvalidTensor(path, name,
                $"has the unsupported dtype '{text}' (supported: {SafetensorsDTypes.SupportedHeaderNames})");
    }

    /// <summary>An array of at most <paramref name="maxCount"/> non-negative integers.</summary>
    static long[] ReadIntegers(ref Utf8JsonReader reader, string name, string field, int maxCount, string path)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw WeightErrors.InvalidTensor(path, name, $"has a '{field}' that is {Describe(reader.TokenType)}, expected an array of integers");
        var values = new List<long>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out var value) || value < 0)
                throw WeightErrors.InvalidTensor(path, name,
                    $"has a '{field}' entry {TokenText(ref reader)}, expected a non-negative integer");
            if (values.Count == maxCount)
                throw WeightErrors.InvalidTensor(path, name, $"has more than {maxCount} '{field}' entries");
            values.Add(value);
        }
        return values.ToArray();
    }

    static TensorInfo Validate(string name, SafetensorsDType dtype, long[] shape, long[] offsets, long dataLength, string path)
    {
        var described = $"({dtype.HeaderName()} [{string.Join(", ", shape)}])";
        if (offsets.Length != 2)
            throw WeightErrors.InvalidTensor(path, name, $"{described} has {offsets.Length} data_offsets, expected [begin, end]");
        var (begin, end) = (offsets[0], offsets[1]);
        if (begin > end)
            throw WeightErrors.InvalidTensor(path, name, $"{described} has data_offsets [{begin}, {end}] that end before they begin");
        if (end > dataLength)
            throw WeightErrors.InvalidTensor(path, name,
                $"{described} has data_offsets [{begin}, {end}] beyond the {dataLength} bytes of the data section (truncated file?)");
        // Capped at 2^63 after each factor, so the next product (below 2^126) cannot overflow; a zero
        // dimension still brings it back to 0.
        UInt128 bytes = (UInt128)dtype.ElementSize();
        foreach (var d in shape)
        {
            bytes *= (ulong)d;
            if (bytes > (UInt128)long.MaxValue) bytes = (UInt128)long.MaxValue + 1;
        }
        if (bytes != (UInt128)(end - begin))
            throw WeightErrors.InvalidTensor(path, name,
                $"{described} needs {(bytes > (UInt128)long.MaxValue ? "more than 2^63" : bytes.ToString())} bytes but data_offsets [{begin}, {end}] hold {end - begin}");
        return new TensorInfo(name, dtype, Array.AsReadOnly(shape), begin, end);
    }

    /// <summary>Two tensors sharing bytes would alias each other's data: a corrupt or hostile file.
    /// Empty tensors occupy no bytes and may sit anywhere.</summary>
    static void CheckNoOverlap(IEnumerable<TensorInfo> tensors, string path)
    {
        TensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataBegin))
        {
            if (previous is not null && t.DataBegin < previous.DataEnd)
                throw WeightErrors.InvalidTensor(path, t.Name,
                    $"has data_offsets [{t.DataBegin}, {t.DataEnd}] overlapping those of '{previous.Name}' [{previous.DataBegin}, {previous.DataEnd}]");
            if (previous is null || t.DataEnd > previous.DataEnd) previous = t;
        }
    }

    static string ReadString(ref Utf8JsonReader reader, string path)
    {
        try
        {
            return reader.GetString()!;
        }
        catch (InvalidOperationException)
        {
            throw WeightErrors.Invalid(path, $"the header holds invalid UTF-8 in a string at byte {reader.TokenStartIndex}");
        }
    }

    static string TokenText(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.Number => System.Text.Encoding.UTF8.GetString(reader.ValueSpan),
        _ => Describe(reader.TokenType),
    };

    internal static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String or JsonTokenType.PropertyName => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.None => "empty",
        _ => token.ToString(),
    };
}
