using XDit.Tensors;

namespace XDit.Weights;

/// <summary>One tensor of a safetensors header: its dtype, shape and the byte range
/// [<see cref="DataBegin"/>, <see cref="DataEnd"/>) of its elements, counted from the start of the
/// data section (the first byte after the header), C order, little-endian.</summary>
public sealed record TensorInfo(string Name, SafetensorsDType DType, IReadOnlyList<long> Shape, long DataBegin, long DataEnd)
{
    public long ByteLength => DataEnd - DataBegin;

    public long NumElements => ByteLength / DType.ElementSize();

    public string ShapeString => Shapes.ToString(Shape.ToArray());

    public override string ToString() => $"{Name} ({DType.HeaderName()} {ShapeString})";
}
