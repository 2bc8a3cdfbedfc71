using System.Text;

namespace XDit.Weights;

/// <summary>
/// Python's <c>json</c> module writes the non-finite floats as the bare tokens <c>NaN</c>,
/// <c>Infinity</c> and <c>-Infinity</c> (real PixArt scheduler configs hold
/// <c>"lambda_min_clipped": -Infinity</c>), which strict JSON and System.Text.Json reject. This rewrites
/// those tokens, outside strings, as the JSON strings <c>"NaN"</c>, <c>"Infinity"</c> and
/// <c>"-Infinity"</c>; everything else is left byte for byte, so syntax errors stay errors.
/// </summary>
internal static class PythonJson
{
    static readonly string[] SpecialTokens = ["-Infinity", "Infinity", "NaN"];

    public static string ToStrictJson(string text)
    {
        StringBuilder? result = null;
        int copied = 0;
        bool inString = false;
        for (int i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (inString)
            {
                if (c == '\\') i++;
                else if (c == '"') inString = false;
                continue;
            }
            if (c == '"')
            {
                inString = true;
                continue;
            }
            if (c is not ('-' or 'I' or 'N')) continue;
            var token = SpecialTokens.FirstOrDefault(t => IsTokenAt(text, i, t));
            if (token is null) continue;
            result ??= new StringBuilder(text.Length + 16);
            result.Append(text, copied, i - copied).Append('"').Append(token).Append('"');
            i += token.Length - 1;
            copied = i + 1;
        }
        return result is null ? text : result.Append(text, copied, text.Length - copied).ToString();
    }

    /// <summary>Whether <paramref name="token"/> stands at <paramref name="index"/> as a whole word
    /// (<c>NaNa</c> is not <c>NaN</c>).</summary>
    static bool IsTokenAt(string text, int index, string token)
    {
        if (string.CompareOrdinal(text, index, token, 0, token.Length) != 0) return false;
        var end = index + token.Length;
        return end == text.Length || !(char.IsAsciiLetterOrDigit(text[end]) || text[end] == '_');
    }
}
