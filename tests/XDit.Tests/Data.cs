using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Random test tensors together with their host values.</summary>
internal static class Data
{
    public static (Tensor Tensor, float[] Values) Random(DeviceContext context, int seed, double scale, params long[] shape)
    {
        var values = Reference.RandomFloats(new Random(seed), (int)Shapes.Product(shape), scale);
        return (Tensor.FromArray(context, values, shape), values);
    }

    /// <summary>A tensor of <paramref name="dtype"/> with random values, and those values as the stored
    /// (rounded) numbers, so references see exactly what the kernel sees.</summary>
    public static (Tensor Tensor, float[] Values) Random(DeviceContext context, DType dtype, int seed, double scale, params long[] shape)
    {
        var (f32, _) = Random(context, seed, scale, shape);
        using (f32)
        {
            var t = f32.To(dtype);
            using var back = t.To(DType.F32);
            return (t, back.ToArray<float>());
        }
    }

    public static float[] Floats(Tensor t)
    {
        using var f = t.To(DType.F32);
        return f.ToArray<float>();
    }

    /// <summary>Row-major strides of a shape, for indexing host arrays.</summary>
    public static long Index(long[] shape, params long[] index)
    {
        long offset = 0;
        for (int i = 0; i < shape.Length; i++) offset = offset * shape[i] + index[i];
        return offset;
    }
}
