using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Checks shared by op wrappers before they call the native library.</summary>
internal static class Operands
{
    public static DeviceContext SameContext(Tensor first, params Tensor?[] others)
    {
        foreach (var t in others)
            if (t is not null && !ReferenceEquals(t.Context, first.Context))
                throw new XDitException(Native.XditStatus.InvalidArgument,
                    $"{t} and {first} belong to different contexts; copy one of them first");
        return first.Context;
    }
}
