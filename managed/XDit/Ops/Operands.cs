using System.Runtime.CompilerServices;
using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>Checks shared by op wrappers before they call the native library.</summary>
internal static class Operands
{
    /// <summary>The context that runs an op on these operands: <paramref name="first"/>'s. Operands must
    /// share it, except that tensors of CPU contexts may mix (host memory is one address space; in-process
    /// ranks read each other's tensors this way).</summary>
    public static DeviceContext SameContext(Tensor first, params Tensor?[] others)
    {
        foreach (var t in others)
            if (t is not null && !ReferenceEquals(t.Context, first.Context) &&
                !(t.Device.Kind == DeviceKind.Cpu && first.Device.Kind == DeviceKind.Cpu))
                throw new XDitException(XditStatus.InvalidArgument,
                    $"{t} and {first} belong to different contexts; copy one of them first");
        return first.Context;
    }

    /// <summary>The descriptor of an optional operand: a null reference (a NULL pointer natively)
    /// when the tensor is absent. <paramref name="storage"/> holds the descriptor for the call.</summary>
    public static ref readonly XditTensor Optional(Tensor? tensor, out XditTensor storage)
    {
        storage = tensor?.Descriptor ?? default;
        if (tensor is null) return ref Unsafe.NullRef<XditTensor>();
        return ref Unsafe.AsRef(in storage);
    }

    /// <summary>A broadcast view of <paramref name="t"/> with <paramref name="shape"/> (NumPy rules), or a
    /// clear error naming both shapes.</summary>
    public static Tensor BroadcastTo(Tensor t, ReadOnlySpan<long> shape, string name)
    {
        long[] target = shape.ToArray();
        if (t.Rank > target.Length || !Shapes.TryBroadcast(t.Shape, target, out var joint) || !Shapes.Equal(joint, target))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{name} {t.ShapeString} does not broadcast to {Shapes.ToString(target)}");
        return t.Expand(target);
    }

    /// <summary>The broadcast shape of the operands, or an <see cref="XDitException"/> naming them.</summary>
    public static long[] BroadcastShape(params Tensor[] operands)
    {
        long[] shape = operands[0].Shape.ToArray();
        foreach (var t in operands.Skip(1))
            if (!Shapes.TryBroadcast(shape, t.Shape, out shape))
                throw new XDitException(XditStatus.InvalidArgument,
                    $"shapes {string.Join(", ", operands.Select(o => o.ShapeString))} do not broadcast together");
        return shape;
    }

    /// <summary>A new output like <paramref name="like"/> (shape and dtype), disposed again if the call fails.</summary>
    public static Tensor NewOutput(Tensor like, Action<Tensor> compute) => NewOutput(like.Context, like.DType, like.Shape, compute);

    public static Tensor NewOutput(DeviceContext context, DType dtype, ReadOnlySpan<long> shape, Action<Tensor> compute)
    {
        var output = Tensor.Empty(context, dtype, shape.ToArray());
        try
        {
            compute(output);
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }
}
