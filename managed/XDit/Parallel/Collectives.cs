using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>What every communicator backend checks and computes the same way.</summary>
internal static class Collectives
{
    public static long Bytes(Tensor t) => t.NumElements * t.DType.ElementSize();

    public static void RequireShape(Tensor t, long[] shape, string what)
    {
        if (!Shapes.Equal(t.Shape, shape))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what} {t.ShapeString} must be {Shapes.ToString(shape)}");
    }

    public static void RequireSameDType(Tensor a, Tensor b, string what)
    {
        if (a.DType != b.DType)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what}: {a.DType.Name()} and {b.DType.Name()} differ");
    }

    /// <summary><paramref name="peer"/> (another rank's tensor) where ops of <paramref name="context"/> may read
    /// it in place — the same context, or host memory, which every CPU context shares — else a copy made
    /// in <paramref name="context"/> after the peer's work (device memory of another rank's stream), owned
    /// by the caller's <see cref="TensorScope"/>.</summary>
    public static Tensor Readable(Tensor peer, DeviceContext context)
    {
        if (ReferenceEquals(peer.Context, context) || (peer.Device.Kind == DeviceKind.Cpu && context.Device.Kind == DeviceKind.Cpu))
            return peer;
        var local = Tensor.Empty(context, peer.DType, peer.Shape.ToArray());
        Elementwise.Copy(peer, local);
        return local;
    }

    /// <summary>The element-wise sum (or max) of <paramref name="parts"/> added in rank order into
    /// <paramref name="data"/>: the same bits on every rank that calls it with the same parts.</summary>
    public static void ReduceInRankOrder(IReadOnlyList<Tensor> parts, ReduceOp op, Tensor data)
    {
        using var scope = new TensorScope();
        var total = parts[0].Clone();
        for (int r = 1; r < parts.Count; r++)
        {
            if (op == ReduceOp.Sum) Elementwise.Add(total, parts[r], total);
            else Elementwise.Max(total, parts[r], total);
        }
        Elementwise.Copy(total, data);
    }
}
