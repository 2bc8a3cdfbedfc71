namespace XDit.Native;

public unsafe partial struct XditTensor
{
    /// <summary>A descriptor for <paramref name="rank"/> dims; shape and strides are in elements.</summary>
    public static XditTensor Create(nint data, XditDtype dtype, ReadOnlySpan<long> shape, ReadOnlySpan<long> strides)
    {
        if (shape.Length > NativeConstants.XDIT_MAX_RANK)
            throw new ArgumentException($"rank {shape.Length} exceeds the native maximum of {NativeConstants.XDIT_MAX_RANK}");
        if (strides.Length != shape.Length)
            throw new ArgumentException($"{strides.Length} strides for {shape.Length} dimensions");
        var t = new XditTensor { data = (void*)data, dtype = (int)dtype, rank = shape.Length };
        for (int i = 0; i < shape.Length; i++)
        {
            t.shape[i] = shape[i];
            t.strides[i] = strides[i];
        }
        return t;
    }
}
