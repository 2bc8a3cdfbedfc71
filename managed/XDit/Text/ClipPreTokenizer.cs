using System.Globalization;
using System.Text;

namespace XDit.Text;

/// <summary>
/// CLIP's pre-tokenizer regex, <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>
/// with IGNORECASE, as Python's <c>regex.findall</c> applies it, written as a scanner over code points:
/// .NET's <see cref="System.Text.RegularExpressions.Regex"/> classifies UTF-16 units, so a letter or
/// digit outside the BMP (𝐀, 𝟘) would fall into the punctuation class there. At each position the
/// alternatives are tried in order; whitespace between matches is skipped, and so is U+0345 (combining
/// ypogegrammeni), which under IGNORECASE the <c>regex</c> module (2022.10.31) matches with neither
/// class: it case-folds to the letter ι, so it is not in <c>[^\s\p{L}\p{N}]</c>, while being a mark,
/// not in <c>[\p{L}]</c>. The words come lazily, so a truncating caller stops reading a long prompt early.
/// </summary>
internal static class ClipPreTokenizer
{
    public const string StartOfText = "<|startoftext|>";
    public const string EndOfText = "<|endoftext|>";

    const char Ypogegrammeni = '\u0345';

    static readonly string[] Contractions = ["s", "t", "re", "ve", "m", "ll", "d"];

    public static IEnumerable<string> Words(string text)
    {
        var i = 0;
        while (i < text.Length)
        {
            if (PythonText.IsSpace(text[i]) || text[i] == Ypogegrammeni)
            {
                i++;
                continue;
            }
            var length = MatchLength(text, i);
            yield return text.Substring(i, length);
            i += length;
        }
    }

    static int MatchLength(string text, int start)
    {
        var rest = text.AsSpan(start);
        if (rest.StartsWith(StartOfText, StringComparison.Ordinal)) return StartOfText.Length;
        if (rest.StartsWith(EndOfText, StringComparison.Ordinal)) return EndOfText.Length;
        if (rest[0] == '\'')
            foreach (var contraction in Contractions)
                if (MatchesIgnoringCase(rest[1..], contraction)) return 1 + contraction.Length;

        var first = Rune.GetRuneAt(text, start);
        var kind = KindOf(first);
        if (kind == Kind.Number) return first.Utf16SequenceLength;
        var end = start + first.Utf16SequenceLength;
        while (end < text.Length)
        {
            var rune = Rune.GetRuneAt(text, end);
            if (KindOf(rune) != kind) break;
            end += rune.Utf16SequenceLength;
        }
        return end - start;
    }

    enum Kind { Letter, Number, Space, Other }

    static Kind KindOf(Rune rune)
    {
        if (rune.IsBmp && (PythonText.IsSpace((char)rune.Value) || rune.Value == Ypogegrammeni)) return Kind.Space;
        return UnicodeData14.Category(rune) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Kind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Kind.Number,
            _ => Kind.Other,
        };
    }

    /// <summary>Whether <paramref name="text"/> starts with the lower-case ASCII
    /// <paramref name="contraction"/> under the regex's case-insensitive matching, where <c>s</c> also
    /// matches the long s (U+017F) it case-folds from.</summary>
    static bool MatchesIgnoringCase(ReadOnlySpan<char> text, string contraction)
    {
        if (text.Length < contraction.Length) return false;
        for (int i = 0; i < contraction.Length; i++)
        {
            var c = text[i];
            var expected = contraction[i];
            if (c != expected && c != char.ToUpperInvariant(expected) && !(expected == 's' && c == '\u017F')) return false;
        }
        return true;
    }
}
