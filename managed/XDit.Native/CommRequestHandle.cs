using Microsoft.Win32.SafeHandles;

namespace XDit.Native;

/// <summary>Owns an <c>xdit_comm_request*</c>: a point-to-point transfer of a native communicator. Freeing
/// one that was not waited for lets the transfer finish in the background (its buffer must then never be
/// reused).</summary>
public sealed class CommRequestHandle : SafeHandleZeroOrMinusOneIsInvalid
{
    public CommRequestHandle() : base(ownsHandle: true) { }

    protected override bool ReleaseHandle() => NativeMethods.xdit_comm_request_free(handle) == XditStatus.Ok;
}
