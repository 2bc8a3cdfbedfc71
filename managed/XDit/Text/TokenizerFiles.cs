using System.Text.Json;
using XDit.Native;

namespace XDit.Text;

/// <summary>
/// Reading the files of a Hugging Face tokenizer folder. Every failure (a missing folder or file, an
/// unreadable file, invalid JSON, a field of the wrong kind) becomes an <see cref="XDitException"/>
/// with <see cref="XditStatus.InvalidArgument"/> whose message names the file, so a wrong path or a
/// truncated download is reported as what it is.
/// </summary>
internal static class TokenizerFiles
{
    public static string RequireFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        if (!Directory.Exists(folder))
            throw new XDitException(XditStatus.InvalidArgument, $"tokenizer folder {folder} does not exist");
        return folder;
    }

    public static byte[] ReadBytes(string path)
    {
        if (!File.Exists(path)) throw Missing(path);
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (IOException e)
        {
            throw Corrupt(path, $"cannot be read ({e.Message})");
        }
        catch (UnauthorizedAccessException e)
        {
            throw Corrupt(path, $"cannot be read ({e.Message})");
        }
    }

    /// <summary>The file as UTF-8 text; invalid UTF-8 is a corrupt file (a replacement character would
    /// silently change tokens).</summary>
    public static string ReadText(string path)
    {
        var bytes = ReadBytes(path);
        try
        {
            return new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (System.Text.DecoderFallbackException e)
        {
            throw Corrupt(path, $"is not UTF-8 text (invalid byte at offset {e.Index})");
        }
    }

    /// <summary>The root of a JSON file, detached from its document.</summary>
    public static JsonElement ReadJson(string path)
    {
        var text = ReadText(path);
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw Corrupt(path, $"is not valid JSON ({e.Message})");
        }
    }

    /// <summary>The root of an optional JSON file, or null when the folder does not have it.</summary>
    public static JsonElement? ReadOptionalJson(string path) => File.Exists(path) ? ReadJson(path) : null;

    /// <summary>A token written either as a plain string or as an <c>AddedToken</c> object with a
    /// <c>content</c> field; null when the property is absent or JSON null.</summary>
    public static string? TokenText(JsonElement? owner, string property, string path)
    {
        if (owner is not { ValueKind: JsonValueKind.Object } o || !o.TryGetProperty(property, out var value)) return null;
        return value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object when value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String
                => content.GetString(),
            _ => throw Corrupt(path, $"has a '{property}' that is neither a string nor an object with a 'content' string"),
        };
    }

    /// <summary>The <c>added_tokens_decoder</c> of a <c>tokenizer_config.json</c> (id → content and
    /// stripping flags), or null when the config predates that field.</summary>
    public static List<AddedToken>? AddedTokensDecoder(JsonElement config, string path)
    {
        if (config.ValueKind != JsonValueKind.Object || !config.TryGetProperty("added_tokens_decoder", out var decoder)) return null;
        if (decoder.ValueKind != JsonValueKind.Object) throw Corrupt(path, "has an 'added_tokens_decoder' that is not an object");
        var tokens = new List<AddedToken>();
        foreach (var entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, System.Globalization.NumberStyles.None, null, out var id))
                throw Corrupt(path, $"has the added-token id '{entry.Name}', not a non-negative integer");
            var token = entry.Value;
            if (token.ValueKind != JsonValueKind.Object || !token.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw Corrupt(path, $"has added token {id} without a 'content' string");
            if (Flag(token, "single_word", path))
                throw new XDitException(XditStatus.Unsupported, $"{path}: added token {id} ('{content.GetString()}') is single_word, which is not supported");
            tokens.Add(new AddedToken(content.GetString()!, id, Flag(token, "lstrip", path), Flag(token, "rstrip", path)));
        }
        return tokens;
    }

    static bool Flag(JsonElement token, string name, string path)
    {
        if (!token.TryGetProperty(name, out var value)) return false;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Corrupt(path, $"has an added token whose '{name}' is not true or false"),
        };
    }

    public static XDitException Missing(string path) =>
        new(XditStatus.InvalidArgument, $"tokenizer file {path} is missing");

    public static XDitException Corrupt(string path, string what) =>
        new(XditStatus.InvalidArgument, $"tokenizer file {path} {what}");
}
