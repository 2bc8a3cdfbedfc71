namespace XDit.Weights;

/// <summary>The element types a <c>.safetensors</c> file may hold that this engine reads. F64 and the
/// small integer types have no engine dtype: loading converts them (see
/// <see cref="SafetensorsDTypes.DefaultEngineDType"/>).</summary>
public enum SafetensorsDType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
}

public static class SafetensorsDTypes
{
    public static int ElementSize(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F64 or SafetensorsDType.I64 => 8,
        SafetensorsDType.F32 or SafetensorsDType.I32 => 4,
        SafetensorsDType.F16 or SafetensorsDType.BF16 or SafetensorsDType.I16 => 2,
        SafetensorsDType.I8 or SafetensorsDType.U8 or SafetensorsDType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool IsFloatingPoint(this SafetensorsDType dtype) =>
        dtype is SafetensorsDType.F64 or SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.BF16;

    /// <summary>The spelling in a safetensors header: <c>F32</c>, <c>BF16</c>, <c>BOOL</c>, ...</summary>
    public static string HeaderName(this SafetensorsDType dtype) =>
        dtype == SafetensorsDType.Bool ? "BOOL" : dtype.ToString();

    public static bool TryParseHeaderName(string name, out SafetensorsDType dtype)
    {
        foreach (var candidate in Enum.GetValues<SafetensorsDType>())
        {
            if (candidate.HeaderName() != name) continue;
            dtype = candidate;
            return true;
        }
        dtype = default;
        return false;
    }

    public static string SupportedHeaderNames =>
        string.Join(", ", Enum.GetValues<SafetensorsDType>().Select(d => d.HeaderName()));

    /// <summary>The engine dtype with the same bytes, or null for F64, I16, I8 and U8.</summary>
    public static DType? EngineDType(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => DType.F32,
        SafetensorsDType.F16 => DType.F16,
        SafetensorsDType.BF16 => DType.BF16,
        SafetensorsDType.I64 => DType.I64,
        SafetensorsDType.I32 => DType.I32,
        SafetensorsDType.Bool => DType.Bool,
        _ => null,
    };

    /// <summary>What a load without an explicit dtype gives: the stored dtype where the engine has it;
    /// F64 becomes F32 (rounded to nearest, as PyTorch's <c>.float()</c>), I16, I8 and U8 become I32
    /// (exact). U8 masks become Bool only when asked for (non-zero is true).</summary>
    public static DType DefaultEngineDType(this SafetensorsDType dtype) =>
        dtype.EngineDType() ?? HostConversion.TargetOf(dtype);

    public static SafetensorsDType FromEngine(DType dtype) => dtype switch
    {
        DType.F32 => SafetensorsDType.F32,
        DType.F16 => SafetensorsDType.F16,
        DType.BF16 => SafetensorsDType.BF16,
        DType.I64 => SafetensorsDType.I64,
        DType.I32 => SafetensorsDType.I32,
        DType.Bool => SafetensorsDType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
