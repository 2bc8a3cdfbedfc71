using System.Text;

namespace XDit.Text;

/// <summary>
/// CLIP's byte-pair encoding of one pre-token (<c>CLIPTokenizer.bpe</c>): the word's UTF-8 bytes as
/// <see cref="ByteLevelAlphabet"/> symbols, <c>&lt;/w&gt;</c> appended to the last one, then repeatedly
/// the adjacent pair of lowest merge rank is merged at every place it occurs, left to right, until no
/// adjacent pair has a rank. Each round costs O(log n) per merge through a priority queue, so a
/// megabyte-long word takes well under a second, where CLIP's own loop (and Microsoft.ML.Tokenizers
/// 2.0.1's BpeTokenizer, three minutes for a 1M-character word) is quadratic. That BpeTokenizer also
/// splits byte-level symbols above U+007F into separate words, so it is not used.
/// </summary>
internal sealed class ClipBpe
{
    public const string EndOfWord = "</w>";

    readonly Dictionary<string, int> _symbolIds = new(StringComparer.Ordinal);
    readonly List<long> _tokenIdOfSymbol = [];
    readonly Dictionary<(int Left, int Right), (int Rank, int Merged)> _merges = new();
    readonly int[] _byteSymbol = new int[256];
    readonly int[] _finalByteSymbol = new int[256];
    readonly Func<string, long> _tokenId;

    /// <param name="merges">The merge rules in rank order (rank 0 first), each a pair of symbols; a
    /// repeated pair keeps its last rank, as CLIP's <c>dict(zip(merges, range(...)))</c> does.</param>
    /// <param name="tokenId">The id of a finished symbol (the vocabulary's, an added token's, or the
    /// unknown token's).</param>
    public ClipBpe(IReadOnlyList<(string Left, string Right)> merges, Func<string, long> tokenId)
    {
        _tokenId = tokenId;
        for (int b = 0; b < 256; b++)
        {
            var symbol = ByteLevelAlphabet.ForByte((byte)b).ToString();
            _byteSymbol[b] = SymbolId(symbol);
            _finalByteSymbol[b] = SymbolId(symbol + EndOfWord);
        }
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            _merges[(SymbolId(left), SymbolId(right))] = (rank, SymbolId(left + right));
        }
    }

    /// <summary>Appends the token ids of <paramref name="word"/> (one pre-token) to <paramref name="ids"/>.</summary>
    public void Encode(string word, List<long> ids)
    {
        var bytes = Encoding.UTF8.GetBytes(word);
        if (bytes.Length == 0) return;
        var symbols = new int[bytes.Length];
        var next = new int[bytes.Length];
        var previous = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            symbols[i] = i == bytes.Length - 1 ? _finalByteSymbol[bytes[i]] : _byteSymbol[bytes[i]];
            next[i] = i + 1 < bytes.Length ? i + 1 : -1;
            previous[i] = i - 1;
        }

        var candidates = new PriorityQueue<Candidate, (int Rank, int Left)>();
        for (int i = 0; i + 1 < bytes.Length; i++) Offer(candidates, symbols, i, i + 1);
        var round = new List<Candidate>();
        var merged = new List<int>();
        while (candidates.TryPeek(out _, out var top))
        {
            round.Clear();
            while (candidates.TryPeek(out _, out var priority) && priority.Rank == top.Rank) round.Add(candidates.Dequeue());
            merged.Clear();
            foreach (var c in round)
            {
                if (symbols[c.Left] != c.LeftSymbol || next[c.Left] != c.Right || symbols[c.Right] != c.RightSymbol) continue;
                symbols[c.Left] = c.Merged;
                symbols[c.Right] = -1;
                next[c.Left] = next[c.Right];
                if (next[c.Right] >= 0) previous[next[c.Right]] = c.Left;
                merged.Add(c.Left);
            }
            foreach (var position in merged)
            {
                if (symbols[position] < 0) continue;
                if (previous[position] >= 0) Offer(candidates, symbols, previous[position], position);
                if (next[position] >= 0) Offer(candidates, symbols, position, next[position]);
            }
        }
        for (int i = 0; i >= 0; i = next[i]) ids.Add(_tokenIdOfSymbol[symbols[i]]);
    }

    /// <summary>An adjacent pair that a merge rule applies to, as it was when queued; it is stale (and
    /// skipped) once either side has changed.</summary>
    readonly record struct Candidate(int Left, int Right, int LeftSymbol, int RightSymbol, int Merged);

    void Offer(PriorityQueue<Candidate, (int Rank, int Left)> candidates, int[] symbols, int left, int right)
    {
        if (!_merges.TryGetValue((symbols[left], symbols[right]), out var merge)) return;
        candidates.Enqueue(new Candidate(left, right, symbols[left], symbols[right], merge.Merged), (merge.Rank, left));
    }

    int SymbolId(string symbol)
    {
        if (_symbolIds.TryGetValue(symbol, out var id)) return id;
        id = _tokenIdOfSymbol.Count;
        _symbolIds.Add(symbol, id);
        _tokenIdOfSymbol.Add(_tokenId(symbol));
        return id;
    }
}
