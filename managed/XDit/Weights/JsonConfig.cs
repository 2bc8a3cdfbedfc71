using System.Text;
using System.Text.Json;

namespace XDit.Weights;

/// <summary>
/// A JSON object read from a checkpoint folder (<c>config.json</c>, <c>scheduler_config.json</c>,
/// <c>model_index.json</c>, an index file), with typed accessors that take the default for a missing
/// key, as Python's <c>__init__</c> defaults do. Python's non-finite floats (<c>NaN</c>,
/// <c>Infinity</c>, <c>-Infinity</c>) are accepted and appear in <see cref="Root"/> as the JSON strings
/// <c>"NaN"</c>, <c>"Infinity"</c> and <c>"-Infinity"</c>; <see cref="Double"/> reads either form. A key
/// given twice (which Python resolves silently to the last) is an error, as is a value of the wrong
/// type: an <see cref="XDitException"/> naming the file and the key.
/// </summary>
public sealed class JsonConfig
{
    /// <summary>Far above any real config (the largest, tokenizer files, are a few MB); it bounds what
    /// a stray huge file can make the reader allocate.</summary>
    public const long MaxBytes = 64 << 20;

    JsonConfig(string path, JsonElement root)
    {
        Path = path;
        Root = root;
    }

    /// <summary>The file (or the source name given to <see cref="Parse"/>) that errors name.</summary>
    public string Path { get; }

    /// <summary>The whole object, for parsers that take a <see cref="JsonElement"/>.</summary>
    public JsonElement Root { get; }

    public IEnumerable<string> Keys => Root.EnumerateObject().Select(p => p.Name);

    public static JsonConfig Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        if (!File.Exists(path)) throw WeightErrors.Invalid(path, "no such file");
        byte[] bytes;
        try
        {
            var length = new FileInfo(path).Length;
            if (length > MaxBytes) throw WeightErrors.Invalid(path, $"is {length} bytes, more than the {MaxBytes}-byte limit for a JSON config");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw WeightErrors.Invalid(path, $"cannot be read: {e.Message}");
        }
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw WeightErrors.Invalid(path, $"is not UTF-8 text (invalid byte at offset {e.Index})");
        }
        return Parse(text.TrimStart('\uFEFF'), path);
    }

    /// <summary>Parses <paramref name="json"/>; <paramref name="source"/> names it in errors.</summary>
    public static JsonConfig Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var document = JsonDocument.Parse(PythonJson.ToStrictJson(json), new JsonDocumentOptions { AllowDuplicateProperties = false });
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw WeightErrors.Invalid(source, $"holds {Describe(document.RootElement)}, expected a JSON object");
            return new JsonConfig(source, document.RootElement.Clone());
        }
        catch (JsonException e)
        {
            throw WeightErrors.Invalid(source, $"is not valid JSON: {e.Message}");
        }
    }

    /// <summary>Whether the key is present (with any value, null included).</summary>
    public bool Has(string key) => Root.TryGetProperty(key, out _);

    /// <summary>Whether the key is present with the value <c>null</c> (Python's None).</summary>
    public bool IsNull(string key) => Root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null;

    /// <summary>The value, or <paramref name="defaultValue"/> when the key is missing or null.</summary>
    public int Int(string key, int defaultValue) => TryGet(key, out var v) ? AsInt(v, key) : defaultValue;

    /// <summary>The value (a number, or one of the non-finite tokens), or <paramref name="defaultValue"/>
    /// when the key is missing or null.</summary>
    public double Double(string key, double defaultValue) => TryGet(key, out var v) ? AsDouble(v, key) : defaultValue;

    public bool Bool(string key, bool defaultValue)
    {
        if (!TryGet(key, out var v)) return defaultValue;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw WrongType(v, key, "true or false"),
        };
    }

    /// <summary>The string; null for a null value (None stays None); <paramref name="defaultValue"/> when
    /// the key is missing.</summary>
    public string? String(string key, string? defaultValue = null)
    {
        if (!Root.TryGetProperty(key, out var v)) return defaultValue;
        return v.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => v.GetString(),
            _ => throw WrongType(v, key, "a string"),
        };
    }

    /// <summary>The array, or <paramref name="defaultValue"/> when the key is missing or null.</summary>
    public int[]? IntArray(string key, int[]? defaultValue = null) => ArrayOf(key, defaultValue, AsInt);

    public double[]? DoubleArray(string key, double[]? defaultValue = null) => ArrayOf(key, defaultValue, AsDouble);

    public string[]? StringArray(string key, string[]? defaultValue = null) =>
        ArrayOf(key, defaultValue, (v, name) => v.ValueKind == JsonValueKind.String ? v.GetString()! : throw WrongType(v, name, "a string"));

    T[]? ArrayOf<T>(string key, T[]? defaultValue, Func<JsonElement, string, T> element)
    {
        if (!TryGet(key, out var v)) return defaultValue;
        if (v.ValueKind != JsonValueKind.Array) throw WrongType(v, key, "an array");
        return v.EnumerateArray().Select((e, i) => element(e, $"{key}[{i}]")).ToArray();
    }

    bool TryGet(string key, out JsonElement value)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Root.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;
    }

    int AsInt(JsonElement v, string key)
    {
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt32(out var i)) return i;
            // 2.0 or 1e3: integral values written as floats are still the integer they denote.
            if (v.TryGetDouble(out var d) && Math.Floor(d) == d && d >= int.MinValue && d <= int.MaxValue) return (int)d;
        }
        throw WrongType(v, key, "an integer");
    }

    double AsDouble(JsonElement v, string key)
    {
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d)) return d;
        if (v.ValueKind == JsonValueKind.String)
            switch (v.GetString())
            {
                case "Infinity": return double.PositiveInfinity;
                case "-Infinity": return double.NegativeInfinity;
                case "NaN": return double.NaN;
            }
        throw WrongType(v, key, "a number");
    }

    XDitException WrongType(JsonElement v, string key, string expected) =>
        WeightErrors.Invalid(Path, $"\"{key}\" is {Describe(v)}, expected {expected}");

    static string Describe(JsonElement v)
    {
        var raw = v.GetRawText();
        if (raw.Length > 60) raw = raw[..57] + "...";
        return v.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => $"an array {raw}",
            JsonValueKind.String => $"a string {raw}",
            JsonValueKind.Number => $"the number {raw}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {raw}",
            _ => raw,
        };
    }

    public override string ToString() => $"JsonConfig({Path})";
}
