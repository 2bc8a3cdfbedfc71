using System.Runtime.InteropServices;
using XDit.Native;

namespace XDit;

/// <summary>The one place where a native status becomes an exception.</summary>
internal static class NativeStatus
{
    public static void Check(XditStatus status)
    {
        if (status != XditStatus.Ok) throw new XDitException(status, LastError());
    }

    public static string LastError() =>
        Marshal.PtrToStringUTF8(NativeMethods.xdit_last_error()) is { Length: > 0 } message
            ? message
            : "the native library reported an error without a message";
}
