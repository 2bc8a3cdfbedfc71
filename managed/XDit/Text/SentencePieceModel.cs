using System.Text;
using XDit.Native;

namespace XDit.Text;

/// <summary>
/// A SentencePiece unigram model read from its <c>.model</c> file, encoding text exactly as the C++
/// library (v0.1.97) does: <see cref="SentencePieceNormalizer"/>, then the Viterbi best segmentation over
/// the vocabulary pieces on the UTF-8 bytes (float scores, ties to the earliest start, a character no
/// piece covers becomes the unknown piece scored <c>min_score - 10</c>), then runs of unknown pieces
/// merged into one. Written here rather than taken from Microsoft.ML.Tokenizers 2.0.1, whose
/// SentencePieceTokenizer cannot load a model without a BOS piece (every T5 model: <c>bos_id = -1</c>),
/// skips the charsmap rules for ASCII control characters, and does not merge unknown runs.
/// Models with user-defined pieces, byte fallback, suffix whitespace or a BPE model type are refused.
/// </summary>
internal sealed class SentencePieceModel
{
    const float UnknownPenalty = 10f;

    enum PieceType { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 }

    readonly string[] _pieces;
    readonly float[] _scores;
    readonly PieceType[] _types;
    readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
    readonly ByteTrie _trie = new();
    readonly SentencePieceNormalizer _normalizer;
    readonly float _unknownScore;

    SentencePieceModel(List<(string Piece, float Score, PieceType Type)> pieces, SentencePieceNormalizer normalizer)
    {
        _pieces = pieces.Select(p => p.Piece).ToArray();
        _scores = pieces.Select(p => p.Score).ToArray();
        _types = pieces.Select(p => p.Type).ToArray();
        _normalizer = normalizer;
        UnknownId = -1;
        var minScore = float.MaxValue;
        for (int id = 0; id < _pieces.Length; id++)
        {
            if (!_ids.TryAdd(_pieces[id], id)) throw new InvalidDataException($"piece '{_pieces[id]}' is defined twice");
            switch (_types[id])
            {
                case PieceType.Normal:
                    minScore = Math.Min(minScore, _scores[id]);
                    _trie.Add(Encoding.UTF8.GetBytes(_pieces[id]), id);
                    break;
                case PieceType.Unused:
                    _trie.Add(Encoding.UTF8.GetBytes(_pieces[id]), id);
                    break;
                case PieceType.Unknown:
                    if (UnknownId >= 0) throw new InvalidDataException($"two unknown pieces ({UnknownId} and {id})");
                    UnknownId = id;
                    break;
            }
        }
        if (UnknownId < 0) throw new InvalidDataException("no unknown piece");
        _unknownScore = minScore - UnknownPenalty;
    }

    /// <summary>The number of pieces; added tokens such as T5's sentinels are numbered after them.</summary>
    public int Count => _pieces.Length;

    public int UnknownId { get; }

    public bool TryGetId(string piece, out int id) => _ids.TryGetValue(piece, out id);

    /// <summary>Reads <paramref name="path"/>; a missing, unreadable or malformed file, or a model kind
    /// this class does not implement, is an <see cref="XDitException"/> naming the file.</summary>
    public static SentencePieceModel Load(string path)
    {
        var bytes = TokenizerFiles.ReadBytes(path);
        try
        {
            return Parse(bytes, path);
        }
        catch (InvalidDataException e)
        {
            throw TokenizerFiles.Corrupt(path, $"is not a valid SentencePiece model ({e.Message})");
        }
    }

    /// <summary>Appends the piece ids of <paramref name="text"/> (no BOS or EOS) to <paramref name="ids"/>.</summary>
    public void Encode(string text, List<long> ids)
    {
        var normalized = _normalizer.Normalize(Encoding.UTF8.GetBytes(text));
        if (normalized.Length == 0) return;
        var (bestId, bestStart) = BestPath(normalized);
        var first = ids.Count;
        for (int end = normalized.Length; end > 0; end = bestStart[end]) ids.Add(bestId[end]);
        ids.Reverse(first, ids.Count - first);
        MergeUnknownRuns(ids, first);
    }

    /// <summary>For every end position of the normalised bytes, the last piece of the best segmentation
    /// ending there and where that piece starts (SentencePiece's <c>EncodeOptimized</c>). The arithmetic
    /// follows the C++ types: a piece's candidate score is a double (the sum of two floats, compared
    /// with the stored float), an unknown piece's a float; a later candidate must be strictly better.</summary>
    (int[] Id, int[] Start) BestPath(byte[] normalized)
    {
        var size = normalized.Length;
        var bestId = new int[size + 1];
        var bestStart = new int[size + 1];
        var bestScore = new float[size + 1];
        Array.Fill(bestStart, -1);
        var start = 0;
        while (start < size)
        {
            var charLength = Math.Min(SentencePieceNormalizer.Utf8CharLength(normalized[start]), size - start);
            var scoreHere = bestScore[start];
            var coversCharacter = false;
            var node = 0;
            for (int end = start + 1; end <= size; end++)
            {
                node = _trie.Child(node, normalized[end - 1]);
                if (node == ByteTrie.NoNode) break;
                var id = _trie.ValueAt(node);
                if (id == ByteTrie.NoValue || _types[id] == PieceType.Unused) continue;
                var candidate = (double)_scores[id] + scoreHere;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = (float)candidate;
                    bestStart[end] = start;
                    bestId[end] = id;
                }
                if (end - start == charLength) coversCharacter = true;
            }
            if (!coversCharacter)
            {
                var end = start + charLength;
                var candidate = _unknownScore + scoreHere;
                if (bestStart[end] == -1 || candidate > bestScore[end])
                {
                    bestScore[end] = candidate;
                    bestStart[end] = start;
                    bestId[end] = UnknownId;
                }
            }
            start += charLength;
        }
        return (bestId, bestStart);
    }

    /// <summary>SentencePiece hands consecutive unknown pieces back as one (so a decoder can copy the
    /// unknown text through); the slow T5 tokenizer keeps that, so one id stands for the whole run.</summary>
    void MergeUnknownRuns(List<long> ids, int first)
    {
        var kept = first;
        for (int i = first; i < ids.Count; i++)
        {
            if (ids[i] == UnknownId && kept > first && ids[kept - 1] == UnknownId) continue;
            ids[kept++] = ids[i];
        }
        ids.RemoveRange(kept, ids.Count - kept);
    }

    static SentencePieceModel Parse(ReadOnlySpan<byte> bytes, string path)
    {
        var pieces = new List<(string, float, PieceType)>();
        var trainer = new TrainerSpec();
        var normalizer = new SentencePieceNormalizer([], true, true, true);
        var reader = new ProtobufReader(bytes);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtobufReader.LengthDelimited): pieces.Add(ParsePiece(reader.ReadLengthDelimited())); break;
                case (2, ProtobufReader.LengthDelimited): ParseTrainerSpec(reader.ReadLengthDelimited(), trainer); break;
                case (3, ProtobufReader.LengthDelimited): normalizer = ParseNormalizerSpec(reader.ReadLengthDelimited()); break;
                default: reader.Skip(wireType); break;
            }
        }
        if (pieces.Count == 0) throw new InvalidDataException("the model has no pieces");
        if (trainer.ModelType != 1)
            throw new XDitException(XditStatus.Unsupported, $"{path}: SentencePiece model type {trainer.ModelType} is not supported (only unigram, type 1)");
        if (trainer.ByteFallback || trainer.TreatWhitespaceAsSuffix || pieces.Any(p => p.Item3 == PieceType.UserDefined))
            throw new XDitException(XditStatus.Unsupported,
                $"{path}: byte fallback, whitespace-as-suffix and user-defined pieces are not supported");
        return new SentencePieceModel(pieces, normalizer);
    }

    static (string, float, PieceType) ParsePiece(ReadOnlySpan<byte> message)
    {
        string piece = "";
        float score = 0;
        var type = PieceType.Normal;
        var reader = new ProtobufReader(message);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (1, ProtobufReader.LengthDelimited): piece = Encoding.UTF8.GetString(reader.ReadLengthDelimited()); break;
                case (2, ProtobufReader.Fixed32): score = reader.ReadFloat(); break;
                case (3, ProtobufReader.Varint): type = (PieceType)reader.ReadInt32(); break;
                default: reader.Skip(wireType); break;
            }
        }
        if (!Enum.IsDefined(type)) throw new InvalidDataException($"piece '{piece}' has the unknown type {(int)type}");
        return (piece, score, type);
    }

    sealed class TrainerSpec
    {
        public int ModelType = 1;
        public bool TreatWhitespaceAsSuffix;
        public bool ByteFallback;
    }

    static void ParseTrainerSpec(ReadOnlySpan<byte> message, TrainerSpec spec)
    {
        var reader = new ProtobufReader(message);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (3, ProtobufReader.Varint): spec.ModelType = reader.ReadInt32(); break;
                case (24, ProtobufReader.Varint): spec.TreatWhitespaceAsSuffix = reader.ReadBool(); break;
                case (35, ProtobufReader.Varint): spec.ByteFallback = reader.ReadBool(); break;
                default: reader.Skip(wireType); break;
            }
        }
    }

    static SentencePieceNormalizer ParseNormalizerSpec(ReadOnlySpan<byte> message)
    {
        ReadOnlySpan<byte> charsmap = [];
        bool addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;
        var reader = new ProtobufReader(message);
        while (!reader.AtEnd)
        {
            var (field, wireType) = reader.ReadTag();
            switch (field, wireType)
            {
                case (2, ProtobufReader.LengthDelimited): charsmap = reader.ReadLengthDelimited(); break;
                case (3, ProtobufReader.Varint): addDummyPrefix = reader.ReadBool(); break;
                case (4, ProtobufReader.Varint): removeExtraWhitespaces = reader.ReadBool(); break;
                case (5, ProtobufReader.Varint): escapeWhitespaces = reader.ReadBool(); break;
                default: reader.Skip(wireType); break;
            }
        }
        return new SentencePieceNormalizer(charsmap, addDummyPrefix, removeExtraWhitespaces, escapeWhitespaces);
    }
}
