using XDit.Native;

namespace XDit;

/// <summary>Element types of tensors. Values equal the native <c>xdit_dtype</c>.</summary>
public enum DType
{
    F32 = XditDtype.F32,
    F16 = XditDtype.F16,
    BF16 = XditDtype.BF16,
    I32 = XditDtype.I32,
    I64 = XditDtype.I64,
    Bool = XditDtype.Bool,
}

public static class DTypeExtensions
{
    public static int ElementSize(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.I64 => 8,
        DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool IsFloatingPoint(this DType dtype) => dtype is DType.F32 or DType.F16 or DType.BF16;

    public static string Name(this DType dtype) => dtype.ToString().ToLowerInvariant();

    internal static XditDtype ToNative(this DType dtype) => (XditDtype)dtype;

    /// <summary>The dtype whose host element type is <typeparamref name="T"/>.</summary>
    public static DType Of<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? DType.F32 :
        typeof(T) == typeof(Half) ? DType.F16 :
        typeof(T) == typeof(BFloat16) ? DType.BF16 :
        typeof(T) == typeof(int) ? DType.I32 :
        typeof(T) == typeof(long) ? DType.I64 :
        typeof(T) == typeof(bool) ? DType.Bool :
        throw new ArgumentException($"{typeof(T).Name} is not a tensor element type (float, Half, BFloat16, int, long, bool)");
}
