using System.Buffers.Binary;
using System.IO.Compression;

namespace XDit.Imaging;

/// <summary>Writes 8-bit RGB images as PNG (no filtering, zlib-compressed scanlines): all a generated
/// picture needs, without an imaging dependency.</summary>
public static class PngWriter
{
    static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
    static readonly uint[] CrcTable = BuildCrcTable();

    /// <summary>Writes <paramref name="rgb"/> (row-major, 3 bytes per pixel) to <paramref name="stream"/>.</summary>
    public static void Write(Stream stream, ReadOnlySpan<byte> rgb, int width, int height)
    {
        if (width <= 0 || height <= 0) throw new ArgumentException($"image size {width}x{height} must be positive");
        if (rgb.Length != checked(width * height * 3))
            throw new ArgumentException($"{rgb.Length} bytes given for a {width}x{height} RGB image ({width * height * 3} needed)");
        stream.Write(Signature);

        Span<byte> header = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, width);
        BinaryPrimitives.WriteInt32BigEndian(header[4..], height);
        header[8] = 8;  // bits per channel
        header[9] = 2;  // truecolour RGB
        header[10] = 0; // deflate
        header[11] = 0; // no filtering beyond the per-row filter byte
        header[12] = 0; // not interlaced
        WriteChunk(stream, "IHDR", header);

        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            var row = width * 3;
            for (int y = 0; y < height; y++)
            {
                zlib.WriteByte(0); // filter type "none"
                zlib.Write(rgb.Slice(y * row, row));
            }
        }
        WriteChunk(stream, "IDAT", compressed.GetBuffer().AsSpan(0, (int)compressed.Length));
        WriteChunk(stream, "IEND", ReadOnlySpan<byte>.Empty);
    }

    public static void Write(string path, ReadOnlySpan<byte> rgb, int width, int height)
    {
        using var file = File.Create(path);
        Write(file, rgb, width, height);
    }

    static void WriteChunk(Stream stream, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        stream.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        for (int i = 0; i < 4; i++) typeBytes[i] = (byte)type[i];
        stream.Write(typeBytes);
        stream.Write(data);
        var crc = Crc32(Crc32(0xffffffffu, typeBytes), data) ^ 0xffffffffu;
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        stream.Write(word);
    }

    static uint Crc32(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data) crc = CrcTable[(crc ^ b) & 0xff] ^ (crc >> 8);
        return crc;
    }

    static uint[] BuildCrcTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            var c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
