namespace XDit.Tensors;

/// <summary>Shape and stride arithmetic shared by tensors and ops.</summary>
public static class Shapes
{
    public static long Product(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n = checked(n * d);
        return n;
    }

    public static long[] ContiguousStrides(ReadOnlySpan<long> shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(shape[i], 1);
        }
        return strides;
    }

    public static bool IsContiguous(ReadOnlySpan<long> shape, ReadOnlySpan<long> strides)
    {
        long expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    public static void Validate(ReadOnlySpan<long> shape)
    {
        if (shape.Length > Native.NativeConstants.XDIT_MAX_RANK)
            throw new ArgumentException($"rank {shape.Length} exceeds the maximum of {Native.NativeConstants.XDIT_MAX_RANK}");
        foreach (var d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape {ToString(shape)}");
        Product(shape);
    }

    public static int NormalizeDim(int dim, int rank)
    {
        var d = dim < 0 ? dim + rank : dim;
        if (d < 0 || d >= rank) throw new ArgumentOutOfRangeException(nameof(dim), dim, $"dimension out of range for rank {rank}");
        return d;
    }

    /// <summary>Resolves one -1 entry so that the shape holds <paramref name="count"/> elements.</summary>
    public static long[] InferShape(ReadOnlySpan<long> shape, long count)
    {
        var result = shape.ToArray();
        int unknown = -1;
        long known = 1;
        for (int i = 0; i < result.Length; i++)
        {
            if (result[i] == -1)
            {
                if (unknown >= 0) throw new ArgumentException($"shape {ToString(shape)} has more than one -1");
                unknown = i;
            }
            else if (result[i] < 0) throw new ArgumentException($"negative dimension in shape {ToString(shape)}");
            else known *= result[i];
        }
        if (unknown >= 0)
        {
            if (known == 0 || count % known != 0)
                throw new ArgumentException($"shape {ToString(shape)} cannot hold {count} elements");
            result[unknown] = count / known;
        }
        if (Product(result) != count)
            throw new ArgumentException($"shape {ToString(shape)} holds {Product(result)} elements, not {count}");
        Validate(result);
        return result;
    }

    /// <summary>NumPy broadcasting of two shapes.</summary>
    public static long[] Broadcast(ReadOnlySpan<long> a, ReadOnlySpan<long> b) =>
        TryBroadcast(a, b, out var result) ? result : throw new ArgumentException($"shapes {ToString(a)} and {ToString(b)} do not broadcast");

    public static bool TryBroadcast(ReadOnlySpan<long> a, ReadOnlySpan<long> b, out long[] result)
    {
        var rank = Math.Max(a.Length, b.Length);
        result = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            var x = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            var y = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (x != y && x != 1 && y != 1) return false;
            result[i] = x == 1 ? y : x;
        }
        return true;
    }

    public static bool Equal(ReadOnlySpan<long> a, ReadOnlySpan<long> b) => a.SequenceEqual(b);

    public static string ToString(ReadOnlySpan<long> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
