using System.Globalization;
using System.Text;

namespace XDit.Text;

/// <summary>
/// The text clean-up of transformers' slow <c>CLIPTokenizer</c> when <c>ftfy</c> is not installed:
/// <c>" ".join(BasicTokenizer(do_lower_case=True, strip_accents=False, do_split_on_punc=False).tokenize(text))</c>.
/// It drops NUL, U+FFFD and every character of a "C" category (controls, format characters such as the
/// emoji ZWJ, private use, unassigned), turns tabs, line breaks and space separators into spaces, puts
/// spaces around CJK ideographs, applies NFC, splits on whitespace, lower-cases each word and joins the
/// words with single spaces. Categories and NFC follow Unicode 14.0, as the golden Python did.
/// </summary>
internal static class ClipTextCleaner
{
    public static string Clean(string text)
    {
        var cleaned = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            var c = rune.Value;
            if (c == 0 || c == 0xFFFD || IsControl(rune)) continue;
            if (IsWhitespace(rune)) cleaned.Append(' ');
            else if (IsCjkIdeograph(c)) cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            else cleaned.Append(rune.ToString());
        }
        var normalized = CanonicalComposition.Nfc(cleaned.ToString());
        var words = SplitOnWhitespace(normalized).Select(PythonText.Lower);
        return string.Join(' ', SplitOnWhitespace(string.Join(' ', words)));
    }

    /// <summary>BasicTokenizer's <c>_is_control</c>: any "C" category except tab, newline and carriage return.</summary>
    static bool IsControl(Rune rune) => rune.Value is not ('\t' or '\n' or '\r') && UnicodeData14.Category(rune) is
        UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse
        or UnicodeCategory.OtherNotAssigned;

    /// <summary>BasicTokenizer's <c>_is_whitespace</c>: space, tab, newline, carriage return, or a space separator (Zs).</summary>
    static bool IsWhitespace(Rune rune) => rune.Value is ' ' or '\t' or '\n' or '\r'
        || UnicodeData14.Category(rune) == UnicodeCategory.SpaceSeparator;

    /// <summary>BasicTokenizer's <c>_is_chinese_char</c>: the CJK Unified Ideographs blocks and
    /// extensions A–E and the compatibility ideographs (not kana, hangul or CJK punctuation).</summary>
    static bool IsCjkIdeograph(int c) => c is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF)
        or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F) or (>= 0x2B740 and <= 0x2B81F)
        or (>= 0x2B820 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);

    /// <summary>Python's <c>str.split()</c>: the non-empty runs between whitespace characters.</summary>
    static IEnumerable<string> SplitOnWhitespace(string text)
    {
        var start = -1;
        for (int i = 0; i < text.Length; i++)
        {
            if (PythonText.IsSpace(text[i]))
            {
                if (start >= 0) yield return text[start..i];
                start = -1;
            }
            else if (start < 0) start = i;
        }
        if (start >= 0) yield return text[start..];
    }
}
