using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_buffer*</c>; releasing it returns the memory to its context's cache.</summary>
public sealed class BufferHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public BufferHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_buffer_free(handle) == XditStatus.Ok;
}
