using System.Buffers;
using System.Runtime.InteropServices;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>Element conversions the native library has no dtype for, done on the host while copying
/// into a tensor: F64 → F32 (round to nearest even, as a C cast), I16/I8/U8 → I32 (exact).</summary>
internal static class HostConversion
{
    /// <summary>The engine dtype such source elements are converted into.</summary>
    public static DType TargetOf(SafetensorsDType source) =>
        source == SafetensorsDType.F64 ? DType.F32 : DType.I32;

    /// <summary>Converts <paramref name="bytes"/> (elements of <paramref name="source"/>) into the
    /// contiguous <paramref name="destination"/> of <see cref="TargetOf"/> its dtype.</summary>
    public static void Write(SafetensorsDType source, ReadOnlySpan<byte> bytes, Tensor destination)
    {
        var count = checked((int)destination.NumElements);
        if (source == SafetensorsDType.F64)
        {
            var doubles = MemoryMarshal.Cast<byte, double>(bytes);
            var floats = ArrayPool<float>.Shared.Rent(count);
            try
            {
                for (int i = 0; i < count; i++) floats[i] = (float)doubles[i];
                destination.CopyFrom<float>(floats.AsSpan(0, count));
            }
            finally
            {
                ArrayPool<float>.Shared.Return(floats);
            }
            return;
        }
        var ints = ArrayPool<int>.Shared.Rent(count);
        try
        {
            switch (source)
            {
                case SafetensorsDType.I16:
                    var shorts = MemoryMarshal.Cast<byte, short>(bytes);
                    for (int i = 0; i < count; i++) ints[i] = shorts[i];
                    break;
                case SafetensorsDType.I8:
                    var sbytes = MemoryMarshal.Cast<byte, sbyte>(bytes);
                    for (int i = 0; i < count; i++) ints[i] = sbytes[i];
                    break;
                case SafetensorsDType.U8:
                    for (int i = 0; i < count; i++) ints[i] = bytes[i];
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(source), source, "the engine stores this dtype directly");
            }
            destination.CopyFrom<int>(ints.AsSpan(0, count));
        }
        finally
        {
            ArrayPool<int>.Shared.Return(ints);
        }
    }
}
