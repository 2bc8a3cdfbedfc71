using System.Globalization;
using System.Text;

namespace XDit.Text;

/// <summary>
/// The few Python <c>str</c> semantics the slow transformers tokenizers rely on, reproduced on .NET
/// strings: <c>str.isspace</c> (which also counts U+001C–U+001F, unlike <see cref="char.IsWhiteSpace(char)"/>),
/// <c>strip</c>, <c>lower</c> (full case mapping: İ becomes "i̇" and a capital sigma at the end of a
/// word becomes ς), and the replacement of unpaired surrogates, which a Python string decoded from UTF-8
/// cannot hold.
/// </summary>
internal static class PythonText
{
    const char CapitalSigma = '\u03A3';

    /// <summary><c>str.isspace</c> for one UTF-16 unit (every such character is in the BMP).</summary>
    public static bool IsSpace(char c) => c is (>= '\u0009' and <= '\u000D') or (>= '\u001C' and <= '\u0020') or '\u0085' or '\u00A0'
        or '\u1680' or (>= '\u2000' and <= '\u200A') or '\u2028' or '\u2029' or '\u202F' or '\u205F' or '\u3000';

    public static string TrimStart(string text)
    {
        var start = 0;
        while (start < text.Length && IsSpace(text[start])) start++;
        return text[start..];
    }

    public static string TrimEnd(string text)
    {
        var end = text.Length;
        while (end > 0 && IsSpace(text[end - 1])) end--;
        return text[..end];
    }

    /// <summary><paramref name="text"/> with every unpaired surrogate replaced by U+FFFD, as decoding
    /// its UTF-8 encoding with <c>errors="replace"</c> would give; the same instance when there is none.</summary>
    public static string ReplaceLoneSurrogates(string text)
    {
        if (FirstLoneSurrogate(text) is not { } first) return text;
        var builder = new StringBuilder(text.Length);
        builder.Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                builder.Append(text, i++, 2);
                continue;
            }
            builder.Append(char.IsSurrogate(text[i]) ? '\uFFFD' : text[i]);
        }
        return builder.ToString();
    }

    /// <summary>The index of the first unpaired surrogate, or null when there is none.</summary>
    static int? FirstLoneSurrogate(string text)
    {
        for (int i = 0; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else return i;
        }
        return null;
    }

    /// <summary>Python 3.11's <c>str.lower()</c> (Unicode 14.0): the simple lower-case mapping of each
    /// code point, except U+0130, whose full mapping is two code points, U+03A3, which becomes final ς
    /// in Unicode's Final_Sigma context (a cased character before it and none after it, skipping
    /// case-ignorable characters both ways), and characters assigned after Unicode 14.0, which stay as
    /// they are. Expects text without unpaired surrogates.</summary>
    public static string Lower(string text)
    {
        var builder = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            var rune = Rune.GetRuneAt(text, i);
            if (rune.Value == 0x0130) builder.Append("i\u0307");
            else if (rune.Value == CapitalSigma) builder.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
            else if (UnicodeData14.Category(rune) == UnicodeCategory.OtherNotAssigned) builder.Append(rune.ToString());
            else builder.Append(Rune.ToLowerInvariant(rune).ToString());
            i += rune.Utf16SequenceLength;
        }
        return builder.ToString();
    }

    static bool IsFinalSigma(string text, int sigma)
    {
        var before = sigma;
        Rune rune = default;
        var found = false;
        while (before > 0)
        {
            Rune.DecodeLastFromUtf16(text.AsSpan(0, before), out rune, out var length);
            before -= length;
            if (!IsCaseIgnorable(rune))
            {
                found = true;
                break;
            }
        }
        if (!found || !IsCased(rune)) return false;
        for (int after = sigma + 1; after < text.Length;)
        {
            rune = Rune.GetRuneAt(text, after);
            if (!IsCaseIgnorable(rune)) return !IsCased(rune);
            after += rune.Utf16SequenceLength;
        }
        return true;
    }

    /// <summary>Unicode's Cased property (for the characters that are not case-ignorable, the only ones
    /// asked): the letters Lu, Ll and Lt plus the Other_Lowercase / Other_Uppercase symbols ª, º, the
    /// Roman numerals and the circled, parenthesised and squared Latin letters.</summary>
    static bool IsCased(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter
            or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        || rune.Value is 0x00AA or 0x00BA or (>= 0x2160 and <= 0x217F) or (>= 0x24B6 and <= 0x24E9)
            or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189);

    /// <summary>Unicode's Case_Ignorable property: marks, format characters, modifier letters and
    /// symbols, and the apostrophes, periods and colons that do not break a word.</summary>
    static bool IsCaseIgnorable(Rune rune) => Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark
            or UnicodeCategory.EnclosingMark or UnicodeCategory.Format or UnicodeCategory.ModifierLetter
            or UnicodeCategory.ModifierSymbol
        || rune.Value is '\'' or '.' or ':' or 0x00B7 or 0x0387 or 0x055F or 0x05F4 or 0x2018 or 0x2019 or 0x2024
            or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;
}
