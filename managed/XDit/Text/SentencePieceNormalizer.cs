using System.Buffers.Binary;

namespace XDit.Text;

/// <summary>
/// SentencePiece's normaliser (<c>normalizer.cc</c>, v0.1.97), on UTF-8 bytes: at each position the
/// longest rule of the precompiled charsmap (for T5, <c>nmt_nfkc</c>: NFKC plus the NMT clean-up of
/// control characters and odd spaces) replaces the matched bytes, otherwise one character is copied;
/// then leading, trailing and repeated spaces are dropped, the dummy-prefix space is added in front and
/// every space becomes <c>▁</c> (U+2581). The rules are data, so the result matches the C++ library
/// byte for byte whatever Unicode version the runtime has.
/// </summary>
internal sealed class SentencePieceNormalizer
{
    static readonly byte[] SpaceSymbol = "\u2581"u8.ToArray();

    readonly DartsDoubleArray? _rules;
    readonly byte[] _replacements;
    readonly bool _addDummyPrefix;
    readonly bool _removeExtraWhitespaces;
    readonly bool _escapeWhitespaces;

    /// <param name="precompiledCharsmap">A little-endian u32 trie size, the darts-clone trie, then the
    /// NUL-terminated replacement strings the trie's values point into; empty for no rules.</param>
    public SentencePieceNormalizer(ReadOnlySpan<byte> precompiledCharsmap, bool addDummyPrefix, bool removeExtraWhitespaces, bool escapeWhitespaces)
    {
        _addDummyPrefix = addDummyPrefix;
        _removeExtraWhitespaces = removeExtraWhitespaces;
        _escapeWhitespaces = escapeWhitespaces;
        _replacements = [];
        if (precompiledCharsmap.IsEmpty) return;
        if (precompiledCharsmap.Length < 4) throw new InvalidDataException("the precompiled charsmap is shorter than its 4-byte header");
        var trieSize = BinaryPrimitives.ReadUInt32LittleEndian(precompiledCharsmap);
        if (trieSize > (uint)(precompiledCharsmap.Length - 4))
            throw new InvalidDataException($"the precompiled charsmap declares a {trieSize}-byte trie in {precompiledCharsmap.Length - 4} bytes");
        _rules = new DartsDoubleArray(precompiledCharsmap.Slice(4, (int)trieSize));
        _replacements = precompiledCharsmap[(4 + (int)trieSize)..].ToArray();
    }

    /// <summary>The normalised form of valid UTF-8 <paramref name="input"/>.</summary>
    public byte[] Normalize(ReadOnlySpan<byte> input)
    {
        if (_removeExtraWhitespaces)
        {
            while (!input.IsEmpty)
            {
                var replacement = NormalizePrefix(input, out var consumed);
                if (!replacement.SequenceEqual(" "u8)) break;
                input = input[consumed..];
            }
        }
        if (input.IsEmpty) return [];

        var output = new List<byte>(input.Length * 3 / 2 + 4);
        if (_addDummyPrefix) AppendSpace(output);
        var previousIsSpace = _removeExtraWhitespaces;
        while (!input.IsEmpty)
        {
            var replacement = NormalizePrefix(input, out var consumed);
            if (previousIsSpace)
                while (!replacement.IsEmpty && replacement[0] == (byte)' ') replacement = replacement[1..];
            if (!replacement.IsEmpty)
            {
                foreach (var b in replacement)
                {
                    if (b == (byte)' ') AppendSpace(output);
                    else output.Add(b);
                }
                previousIsSpace = replacement[^1] == (byte)' ';
            }
            input = input[consumed..];
            if (!_removeExtraWhitespaces) previousIsSpace = false;
        }
        if (_removeExtraWhitespaces)
        {
            ReadOnlySpan<byte> space = _escapeWhitespaces ? SpaceSymbol : " "u8;
            while (output.Count >= space.Length && System.Runtime.InteropServices.CollectionsMarshal.AsSpan(output)[^space.Length..].SequenceEqual(space))
                output.RemoveRange(output.Count - space.Length, space.Length);
        }
        return output.ToArray();
    }

    void AppendSpace(List<byte> output)
    {
        if (_escapeWhitespaces) output.AddRange(SpaceSymbol);
        else output.Add((byte)' ');
    }

    /// <summary>The replacement for the start of <paramref name="input"/> and how many bytes it
    /// consumes: the longest rule, or else the first character unchanged.</summary>
    ReadOnlySpan<byte> NormalizePrefix(ReadOnlySpan<byte> input, out int consumed)
    {
        if (_rules is not null)
        {
            var (value, length) = _rules.LongestPrefix(input);
            if (length > 0)
            {
                if ((uint)value >= (uint)_replacements.Length)
                    throw new InvalidDataException($"a charsmap rule points at byte {value} of {_replacements.Length} replacement bytes");
                var replacement = _replacements.AsSpan(value);
                var end = replacement.IndexOf((byte)0);
                consumed = length;
                return end < 0 ? replacement : replacement[..end];
            }
        }
        consumed = Math.Min(Utf8CharLength(input[0]), input.Length);
        return input[..consumed];
    }

    /// <summary>The byte length of the UTF-8 character starting with <paramref name="leadByte"/>, read
    /// from its high nibble as SentencePiece does.</summary>
    public static int Utf8CharLength(byte leadByte) => (leadByte >> 4) switch
    {
        0xC or 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    };
}
