using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_comm*</c> (a communicator of the native library, such as MPI's).</summary>
public sealed class CommHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public CommHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_comm_destroy(handle) == XditStatus.Ok;
}
