using System.Text;

namespace XDit.Text;

/// <summary>
/// Unicode normalisation form C (canonical decomposition, canonical reordering, canonical composition,
/// as in UAX #15) over the Unicode 14.0 tables of <see cref="UnicodeData14"/>, i.e. what Python 3.11's
/// <c>unicodedata.normalize("NFC", text)</c> returns. Needed because with invariant globalization .NET's
/// <see cref="string.Normalize()"/> leaves text unchanged.
/// </summary>
internal static class CanonicalComposition
{
    const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    /// <summary>No character below U+0300 decomposes to anything but itself after recomposition, and
    /// none combines, so such text is already in NFC.</summary>
    const char FirstCombiningMark = '\u0300';

    public static string Nfc(string text)
    {
        if (!text.AsSpan().ContainsAnyExceptInRange('\0', (char)(FirstCombiningMark - 1))) return text;
        var codePoints = new List<int>(text.Length);
        foreach (var rune in text.EnumerateRunes()) Decompose(rune.Value, codePoints);
        Reorder(codePoints);
        Compose(codePoints);
        var builder = new StringBuilder(codePoints.Count);
        foreach (var c in codePoints) builder.Append(new Rune(c).ToString());
        return builder.ToString();
    }

    static void Decompose(int c, List<int> output)
    {
        if (c >= SBase && c < SBase + SCount)
        {
            var index = c - SBase;
            output.Add(LBase + index / NCount);
            output.Add(VBase + index % NCount / TCount);
            if (index % TCount != 0) output.Add(TBase + index % TCount);
            return;
        }
        if (UnicodeData14.Decomposition(c) is not { } parts)
        {
            output.Add(c);
            return;
        }
        foreach (var part in parts) Decompose(part, output);
    }

    /// <summary>Sorts every run of combining marks by combining class, keeping the order of equal
    /// classes (an insertion sort: the runs are short).</summary>
    static void Reorder(List<int> c)
    {
        for (int i = 1; i < c.Count; i++)
        {
            var cls = UnicodeData14.CombiningClass(c[i]);
            if (cls == 0) continue;
            var j = i;
            while (j > 0 && UnicodeData14.CombiningClass(c[j - 1]) > cls)
            {
                (c[j - 1], c[j]) = (c[j], c[j - 1]);
                j--;
            }
        }
    }

    /// <summary>Composes each character with the last starter before it unless a character between
    /// them blocks it (has class 0, or a class not below its own).</summary>
    static void Compose(List<int> c)
    {
        if (c.Count == 0) return;
        var starter = 0;
        var lastClass = UnicodeData14.CombiningClass(c[0]) == 0 ? 0 : 256;
        var written = 1;
        for (int i = 1; i < c.Count; i++)
        {
            var cls = UnicodeData14.CombiningClass(c[i]);
            var composite = Composite(c[starter], c[i]);
            if (composite >= 0 && (lastClass < cls || lastClass == 0))
            {
                c[starter] = composite;
                continue;
            }
            if (cls == 0) starter = written;
            lastClass = cls;
            c[written++] = c[i];
        }
        c.RemoveRange(written, c.Count - written);
    }

    static int Composite(int first, int second)
    {
        if (first >= LBase && first < LBase + LCount && second >= VBase && second < VBase + VCount)
            return SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
        if (first >= SBase && first < SBase + SCount && (first - SBase) % TCount == 0 && second > TBase && second < TBase + TCount)
            return first + (second - TBase);
        return UnicodeData14.Composite(first, second);
    }
}
