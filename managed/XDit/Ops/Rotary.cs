using XDit.Native;
using XDit.Tensors;

namespace XDit.Ops;

/// <summary>How a rotary embedding pairs the features it rotates.</summary>
public enum RotaryPairing
{
    /// <summary>(2i, 2i+1), as Flux does.</summary>
    Interleaved,
    /// <summary>(i, i + D/2): the rotate-half form.</summary>
    Halves,
}

/// <summary>Rotary position embedding applied to queries or keys.</summary>
public static class Rotary
{
    /// <summary>Rotates x [B, S, H, D] by the angles whose cos/sin tables broadcast to x (usually [S, 1, D]
    /// tables, or [S, D] unsqueezed).</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin, RotaryPairing pairing) =>
        Operands.NewOutput(x, o => Apply(x, cos, sin, pairing, o));

    public static void Apply(Tensor x, Tensor cos, Tensor sin, RotaryPairing pairing, Tensor output)
    {
        var context = Operands.SameContext(x, cos, sin, output);
        using var ec = Operands.BroadcastTo(cos, x.Shape, "cos");
        using var es = Operands.BroadcastTo(sin, x.Shape, "sin");
        var (dx, dc, ds, dout) = (x.Descriptor, ec.Descriptor, es.Descriptor, output.Descriptor);
        NativeStatus.Check(NativeMethods.xdit_rope(context.Handle, in dx, in dc, in ds,
            pairing == RotaryPairing.Interleaved ? 1 : 0, in dout));
    }
}
