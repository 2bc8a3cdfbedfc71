using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_context*</c>. Native buffers hold their own reference to the context, so
/// releasing this handle never invalidates a live buffer.</summary>
public sealed class ContextHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public ContextHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_context_destroy(handle) == XditStatus.Ok;
}
