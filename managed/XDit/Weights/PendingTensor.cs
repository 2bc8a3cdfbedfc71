using XDit.Tensors;

namespace XDit.Weights;

/// <summary>A tensor queued for a safetensors writer: its header fields and where its bytes come from
/// (a live <see cref="Tensor"/>, read when the file is written, or caller-owned raw bytes).</summary>
internal sealed class PendingTensor
{
    readonly Tensor? _tensor;
    readonly ReadOnlyMemory<byte> _bytes;

    PendingTensor(string name, SafetensorsDType dtype, long[] shape, Tensor? tensor, ReadOnlyMemory<byte> bytes)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        ByteLength = Shapes.Product(shape) * dtype.ElementSize();
        _tensor = tensor;
        _bytes = bytes;
    }

    public string Name { get; }
    public SafetensorsDType DType { get; }
    public long[] Shape { get; }
    public long ByteLength { get; }

    public static PendingTensor FromTensor(string name, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(tensor.IsDisposed, tensor);
        return new PendingTensor(name, SafetensorsDTypes.FromEngine(tensor.DType), tensor.Shape.ToArray(), tensor, default);
    }

    public static PendingTensor FromBytes(string name, SafetensorsDType dtype, long[] shape, ReadOnlyMemory<byte> bytes)
    {
        ArgumentNullException.ThrowIfNull(shape);
        Shapes.Validate(shape);
        var expected = (UInt128)(ulong)Shapes.Product(shape) * (ulong)dtype.ElementSize();
        if (expected != (ulong)bytes.Length)
            throw new ArgumentException(
                $"tensor '{name}' ({dtype.HeaderName()} {Shapes.ToString(shape)}) needs {expected} bytes, {bytes.Length} given", nameof(bytes));
        return new PendingTensor(name, dtype, (long[])shape.Clone(), null, bytes);
    }

    /// <summary>Writes the elements (C order, little-endian) to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream)
    {
        if (_tensor is null)
        {
            stream.Write(_bytes.Span);
            return;
        }
        using var packed = _tensor.Contiguous();
        var buffer = new byte[Math.Min(ByteLength, TensorBytes.ChunkBytes)];
        TensorBytes.ForEachChunk(packed, (part, _) =>
        {
            var bytes = buffer.AsSpan(0, (int)(part.NumElements * DType.ElementSize()));
            TensorBytes.Read(part, bytes);
            stream.Write(bytes);
        });
    }
}
