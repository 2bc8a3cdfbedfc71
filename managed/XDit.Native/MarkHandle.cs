using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_mark*</c>: a point in a context's work, for timing it.</summary>
public sealed class MarkHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public MarkHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_mark_destroy(handle) == XditStatus.Ok;
}
