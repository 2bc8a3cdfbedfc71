using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_graph*</c>: a captured sequence of a context's work.</summary>
public sealed class GraphHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public GraphHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_graph_destroy(handle) == XditStatus.Ok;
}
