using XDit.Native;

namespace XDit;

/// <summary>An error reported by the native library (or a check on the managed side of the
/// boundary): <see cref="Status"/> says what kind, the message says precisely what.</summary>
public sealed class XDitException : Exception
{
    public XDitException(XditStatus status, string message) : base(message) => Status = status;

    public XditStatus Status { get; }
}
