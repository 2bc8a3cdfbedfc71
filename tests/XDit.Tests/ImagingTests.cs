using System.Buffers.Binary;
using System.IO.Compression;
using XDit.Imaging;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>PNG files read back by an independent parser (bitwise CRC, zlib inflate), and the
/// tensor-to-bytes conversion against diffusers' formula.</summary>
[TestFixture]
public class ImagingTests
{
    static uint BitwiseCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xffffffff;
        foreach (var b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }

    [Test]
    public void PngRoundTripsThroughAnIndependentReader()
    {
        const int width = 5, height = 3;
        var rgb = new byte[width * height * 3];
        new Random(1).NextBytes(rgb);
        using var stream = new MemoryStream();
        PngWriter.Write(stream, rgb, width, height);
        var bytes = stream.ToArray();
        Assert.That(bytes.AsSpan(0, 8).ToArray(), Is.EqualTo(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));
        var chunks = new List<(string Type, byte[] Data)>();
        for (int at = 8; at < bytes.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at));
            var type = System.Text.Encoding.ASCII.GetString(bytes, at + 4, 4);
            var data = bytes.AsSpan(at + 8, length).ToArray();
            var crc = BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(at + 8 + length));
            Assert.That(crc, Is.EqualTo(BitwiseCrc(bytes.AsSpan(at + 4, 4 + length))), $"CRC of {type}");
            chunks.Add((type, data));
            at += 12 + length;
        }
        Assert.That(chunks.Select(c => c.Type), Is.EqualTo(new[] { "IHDR", "IDAT", "IEND" }));
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(chunks[0].Data), Is.EqualTo(width));
        Assert.That(BinaryPrimitives.ReadInt32BigEndian(chunks[0].Data.AsSpan(4)), Is.EqualTo(height));
        using var inflater = new ZLibStream(new MemoryStream(chunks[1].Data), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        inflater.CopyTo(raw);
        var scanlines = raw.ToArray();
        Assert.That(scanlines.Length, Is.EqualTo(height * (1 + width * 3)));
        for (int y = 0; y < height; y++)
        {
            Assert.That(scanlines[y * (1 + width * 3)], Is.Zero, "filter byte");
            Assert.That(scanlines.AsSpan(y * (1 + width * 3) + 1, width * 3).ToArray(), Is.EqualTo(rgb.AsSpan(y * width * 3, width * 3).ToArray()));
        }
    }

    [Test]
    public void TensorsBecomeBytesAsDiffusersPostprocesses()
    {
        using var context = Contexts.Cpu();
        // Channel values chosen to hit clamping and the round-half-to-even cases of (x/2 + 0.5)·255.
        float Pre(double unit) => (float)(unit * 2 - 1);
        var values = new[] { Pre(0.5 / 255), Pre(1.5 / 255), -3f, 3f, 0f, Pre(254.5 / 255) };
        using var images = Tensor.FromArray(context, values, 1, 3, 1, 2);
        var rgb = ImageConversion.ToRgbBytes(images)[0];
        // Pixel 0 takes channels (values[0], values[2], values[4]); pixel 1 (values[1], values[3], values[5]).
        var expected = new byte[6];
        for (int p = 0; p < 2; p++)
            for (int c = 0; c < 3; c++)
            {
                var unit = Math.Clamp(values[c * 2 + p] / 2.0f + 0.5f, 0f, 1f);
                expected[p * 3 + c] = (byte)Math.Round(unit * 255f, MidpointRounding.ToEven);
            }
        Assert.That(rgb, Is.EqualTo(expected));
        Assert.That(rgb[2], Is.EqualTo(128), "0 maps to 127.5, which rounds to even 128");
    }
}
