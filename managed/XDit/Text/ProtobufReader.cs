namespace XDit.Text;

/// <summary>
/// Just enough of the protocol-buffers wire format to read a SentencePiece <c>.model</c> file (a
/// serialised <c>ModelProto</c>): tags, varints, 32-bit fixed values and length-delimited fields, with
/// unknown fields skipped. A malformed buffer throws <see cref="InvalidDataException"/>; the caller names
/// the file. Hand-written so the tokenizer does not depend on a protobuf runtime or on generated code.
/// </summary>
internal ref struct ProtobufReader
{
    public const int Varint = 0;
    public const int Fixed64 = 1;
    public const int LengthDelimited = 2;
    public const int Fixed32 = 5;

    readonly ReadOnlySpan<byte> _data;
    int _position;

    public ProtobufReader(ReadOnlySpan<byte> data)
    {
        _data = data;
        _position = 0;
    }

    public bool AtEnd => _position >= _data.Length;

    /// <summary>The next field's number and wire type.</summary>
    public (int Field, int WireType) ReadTag()
    {
        var tag = ReadVarint();
        var field = tag >> 3;
        if (field == 0 || field > int.MaxValue) throw Malformed($"field number {field}");
        return ((int)field, (int)(tag & 7));
    }

    public ulong ReadVarint()
    {
        ulong value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (_position >= _data.Length) throw Malformed("a varint runs past the end");
            var b = _data[_position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
        }
        throw Malformed("a varint is longer than 10 bytes");
    }

    /// <summary>An <c>int32</c> field: negative values are sign-extended to ten bytes on the wire.</summary>
    public int ReadInt32() => unchecked((int)ReadVarint());

    public bool ReadBool() => ReadVarint() != 0;

    public float ReadFloat() => BitConverter.Int32BitsToSingle(unchecked((int)ReadFixed32()));

    public ReadOnlySpan<byte> ReadLengthDelimited()
    {
        var length = ReadVarint();
        if (length > (ulong)(_data.Length - _position)) throw Malformed($"a field of {length} bytes runs past the end");
        var field = _data.Slice(_position, (int)length);
        _position += (int)length;
        return field;
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case Varint: ReadVarint(); break;
            case Fixed64: Advance(8); break;
            case LengthDelimited: ReadLengthDelimited(); break;
            case Fixed32: Advance(4); break;
            default: throw Malformed($"wire type {wireType}");
        }
    }

    uint ReadFixed32()
    {
        if (_data.Length - _position < 4) throw Malformed("a 32-bit value runs past the end");
        var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_data.Slice(_position, 4));
        _position += 4;
        return value;
    }

    void Advance(int count)
    {
        if (_data.Length - _position < count) throw Malformed($"a {count}-byte value runs past the end");
        _position += count;
    }

    InvalidDataException Malformed(string what) => new($"malformed protobuf at byte {_position}: {what}");
}
