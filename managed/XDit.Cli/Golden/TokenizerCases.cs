using System.Text.Json;
using XDit.Text;
using XDit.Weights;

namespace XDit.Cli.Golden;

/// <summary>Tokenizer cases (<c>cases.json</c>): every string's ids, and every <c>padded[N]</c> variant's
/// ids and attention mask, must be equal. The reported error is the fraction of mismatching encodings.</summary>
internal static class TokenizerCases
{
    public static IEnumerable<GoldenResult> Run(string name, string folder)
    {
        var json = JsonConfig.Load(Path.Combine(folder, "cases.json")).Root;
        var className = json.GetProperty("tokenizer_class").GetString() ?? "";
        Func<string, long[]> encode;
        Func<string, int, TokenBatch> padded;
        if (className.StartsWith("T5Tokenizer", StringComparison.Ordinal))
        {
            var tokenizer = T5Tokenizer.FromFolder(folder);
            (encode, padded) = (tokenizer.Encode, (text, n) => tokenizer.EncodeBatch([text], n, padToMaxLength: true, truncate: true));
        }
        else if (className.StartsWith("CLIPTokenizer", StringComparison.Ordinal))
        {
            var tokenizer = ClipTokenizer.FromFolder(folder);
            (encode, padded) = (tokenizer.Encode, (text, n) => tokenizer.EncodeBatch([text], n, padToMaxLength: true, truncate: true));
        }
        else throw new NotSupportedException($"tokenizer class {className} is not implemented");

        int encodings = 0, mismatches = 0;
        string? first = null;
        foreach (var c in json.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            encodings++;
            if (!encode(text).SequenceEqual(Longs(c.GetProperty("ids"))))
            {
                mismatches++;
                first ??= $"ids of \"{Shorten(text)}\"";
            }
            foreach (var variant in c.GetProperty("padded").EnumerateObject())
            {
                encodings++;
                var batch = padded(text, int.Parse(variant.Name));
                if (batch.Ids(0).SequenceEqual(Longs(variant.Value.GetProperty("input_ids"))) &&
                    batch.Mask(0).SequenceEqual(Longs(variant.Value.GetProperty("attention_mask")))) continue;
                mismatches++;
                first ??= $"padded[{variant.Name}] of \"{Shorten(text)}\"";
            }
        }
        yield return new GoldenResult(name, $"{encodings} encodings", (double)mismatches / Math.Max(encodings, 1), 1e-12,
            mismatches == 0 ? null : $"{mismatches} differ, first: {first}");
    }

    static long[] Longs(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();

    static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
