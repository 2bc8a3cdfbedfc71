using System.Runtime.InteropServices;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>Raw little-endian element bytes into and out of contiguous tensors, in chunks, so that a
/// tensor of any size moves through host buffers of bounded size (and spans, which hold at most 2³¹
/// elements). The bytes are reinterpreted as the dtype's host type: this engine runs on
/// little-endian hosts only, as safetensors data is little-endian.</summary>
internal static class TensorBytes
{
    /// <summary>Bytes per chunk: large enough that per-call overhead vanishes, small enough for a
    /// pooled host buffer.</summary>
    public const int ChunkBytes = 16 << 20;

    /// <summary>Calls <paramref name="move"/> for consecutive element ranges of <paramref name="tensor"/>
    /// (contiguous), each at most <see cref="ChunkBytes"/> long, with a flat view of the range.</summary>
    public static void ForEachChunk(Tensor tensor, Action<Tensor, long> move)
    {
        var count = tensor.NumElements;
        if (count == 0) return;
        var perChunk = ChunkBytes / tensor.DType.ElementSize();
        using var flat = tensor.View(count);
        for (long start = 0; start < count; start += perChunk)
        {
            using var part = flat.Narrow(0, start, Math.Min(perChunk, count - start));
            move(part, start);
        }
    }

    /// <summary>Copies <paramref name="bytes"/> (one element per element of the view) into
    /// <paramref name="destination"/>.</summary>
    public static void Write(Tensor destination, ReadOnlySpan<byte> bytes)
    {
        switch (destination.DType)
        {
            case DType.F32: destination.CopyFrom(MemoryMarshal.Cast<byte, float>(bytes)); break;
            case DType.F16: destination.CopyFrom(MemoryMarshal.Cast<byte, Half>(bytes)); break;
            case DType.BF16: destination.CopyFrom(MemoryMarshal.Cast<byte, BFloat16>(bytes)); break;
            case DType.I32: destination.CopyFrom(MemoryMarshal.Cast<byte, int>(bytes)); break;
            case DType.I64: destination.CopyFrom(MemoryMarshal.Cast<byte, long>(bytes)); break;
            case DType.Bool: destination.CopyFrom(MemoryMarshal.Cast<byte, bool>(bytes)); break;
            default: throw new ArgumentOutOfRangeException(nameof(destination), destination.DType, null);
        }
    }

    /// <summary>Copies the elements of <paramref name="source"/> into <paramref name="bytes"/>.</summary>
    public static void Read(Tensor source, Span<byte> bytes)
    {
        switch (source.DType)
        {
            case DType.F32: source.CopyTo(MemoryMarshal.Cast<byte, float>(bytes)); break;
            case DType.F16: source.CopyTo(MemoryMarshal.Cast<byte, Half>(bytes)); break;
            case DType.BF16: source.CopyTo(MemoryMarshal.Cast<byte, BFloat16>(bytes)); break;
            case DType.I32: source.CopyTo(MemoryMarshal.Cast<byte, int>(bytes)); break;
            case DType.I64: source.CopyTo(MemoryMarshal.Cast<byte, long>(bytes)); break;
            case DType.Bool: source.CopyTo(MemoryMarshal.Cast<byte, bool>(bytes)); break;
            default: throw new ArgumentOutOfRangeException(nameof(source), source.DType, null);
        }
    }
}
