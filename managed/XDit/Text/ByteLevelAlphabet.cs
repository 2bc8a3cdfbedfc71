namespace XDit.Text;

/// <summary>
/// GPT-2's reversible byte-to-character table (<c>bytes_to_unicode</c>), which CLIP's BPE vocabulary is
/// written in: the printable bytes <c>!</c>–<c>~</c>, <c>¡</c>–<c>¬</c> and <c>®</c>–<c>ÿ</c> stand for
/// themselves, and the other 68 bytes, in increasing order, for U+0100, U+0101, …
/// </summary>
internal static class ByteLevelAlphabet
{
    static readonly char[] CharOf = Build();

    public static char ForByte(byte b) => CharOf[b];

    static char[] Build()
    {
        var table = new char[256];
        var next = 256;
        for (int b = 0; b < 256; b++)
        {
            var printable = b is (>= '!' and <= '~') or (>= '¡' and <= '¬') or (>= '®' and <= 'ÿ');
            table[b] = printable ? (char)b : (char)next++;
        }
        return table;
    }
}
