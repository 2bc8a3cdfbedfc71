using System.Buffers.Binary;

namespace XDit.Text;

/// <summary>
/// A read-only darts-clone double-array trie, the structure SentencePiece stores inside a model's
/// <c>precompiled_charsmap</c> to find normalisation rules: an array of 32-bit units, each holding a
/// label byte, an offset to its children and a has-leaf flag, or (for a leaf) the rule's value.
/// </summary>
internal sealed class DartsDoubleArray
{
    /// <summary>SentencePiece asks darts for at most this many prefix matches and picks the longest of
    /// those; kept so that a pathological rule set behaves as it does there.</summary>
    const int MaxPrefixResults = 32;

    readonly uint[] _units;

    public DartsDoubleArray(ReadOnlySpan<byte> blob)
    {
        if (blob.Length % 4 != 0) throw new InvalidDataException($"a double-array of {blob.Length} bytes is not a whole number of 4-byte units");
        _units = new uint[blob.Length / 4];
        for (int i = 0; i < _units.Length; i++) _units[i] = BinaryPrimitives.ReadUInt32LittleEndian(blob.Slice(4 * i, 4));
    }

    /// <summary>The value and length of the longest key that is a prefix of <paramref name="key"/>, or
    /// length 0 when none is.</summary>
    public (int Value, int Length) LongestPrefix(ReadOnlySpan<byte> key)
    {
        if (_units.Length == 0) return (0, 0);
        int value = 0, length = 0, found = 0;
        long node = Offset(_units[0]);
        for (int i = 0; i < key.Length; i++)
        {
            node ^= key[i];
            if (node >= _units.Length) break;
            var unit = _units[node];
            if (Label(unit) != key[i]) break;
            node ^= Offset(unit);
            if (!HasLeaf(unit)) continue;
            if (node >= _units.Length) throw new InvalidDataException($"a double-array leaf points at unit {node} of {_units.Length}");
            if (found++ < MaxPrefixResults)
            {
                value = (int)(_units[node] & 0x7FFF_FFFF);
                length = i + 1;
            }
        }
        return (value, length);
    }

    static bool HasLeaf(uint unit) => ((unit >> 8) & 1) == 1;

    static uint Label(uint unit) => unit & (0x8000_0000u | 0xFF);

    static long Offset(uint unit) => (long)(unit >> 10) << (int)((unit & (1u << 9)) >> 6);
}
