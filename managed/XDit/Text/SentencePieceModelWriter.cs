using System.Text;

namespace XDit.Text;

/// <summary>
/// Writes a SentencePiece unigram <c>.model</c> file (the protobuf <c>ModelProto</c>: pieces, a trainer
/// spec naming the unigram type, default normalizer) for the built-in tiny pipelines, whose tokenizer
/// is made here rather than trained. Pieces 0, 1, 2 are <c>&lt;pad&gt;</c>, <c>&lt;/s&gt;</c> and
/// <c>&lt;unk&gt;</c>, as in T5.
/// </summary>
public static class SentencePieceModelWriter
{
    const int Normal = 1, Unknown = 2, Control = 3;

    /// <summary>The model bytes for the given normal pieces and their scores (higher is preferred).</summary>
    public static byte[] Unigram(IReadOnlyList<(string Piece, float Score)> pieces)
    {
        using var model = new MemoryStream();
        WritePiece(model, "<pad>", 0, Control);
        WritePiece(model, "</s>", 0, Control);
        WritePiece(model, "<unk>", 0, Unknown);
        foreach (var (piece, score) in pieces) WritePiece(model, piece, score, Normal);
        using var trainer = new MemoryStream();
        WriteVarintField(trainer, 3, 1); // model_type = UNIGRAM
        WriteVarintField(trainer, 4, (ulong)(pieces.Count + 3)); // vocab_size
        WriteBytesField(model, 2, trainer.ToArray());
        return model.ToArray();
    }

    /// <summary>A small English vocabulary: word-initial and inner letters, digits and punctuation.</summary>
    public static IReadOnlyList<(string Piece, float Score)> TinyEnglishVocabulary()
    {
        var pieces = new List<(string, float)> { ("▁", -3f) };
        foreach (var c in "abcdefghijklmnopqrstuvwxyz") pieces.Add(("▁" + c, -2f));
        foreach (var c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:;()") pieces.Add((c.ToString(), -2.5f));
        return pieces;
    }

    static void WritePiece(Stream model, string piece, float score, int type)
    {
        using var message = new MemoryStream();
        WriteBytesField(message, 1, Encoding.UTF8.GetBytes(piece));
        WriteTag(message, 2, 5);
        Span<byte> bytes = stackalloc byte[4];
        BitConverter.TryWriteBytes(bytes, score);
        message.Write(bytes);
        WriteVarintField(message, 3, (ulong)type);
        WriteBytesField(model, 1, message.ToArray());
    }

    static void WriteTag(Stream stream, int field, int wireType) => WriteVarint(stream, (ulong)(field << 3 | wireType));

    static void WriteVarintField(Stream stream, int field, ulong value)
    {
        WriteTag(stream, field, 0);
        WriteVarint(stream, value);
    }

    static void WriteBytesField(Stream stream, int field, byte[] value)
    {
        WriteTag(stream, field, 2);
        WriteVarint(stream, (ulong)value.Length);
        stream.Write(value);
    }

    static void WriteVarint(Stream stream, ulong value)
    {
        while (value >= 0x80)
        {
            stream.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        stream.WriteByte((byte)value);
    }
}
