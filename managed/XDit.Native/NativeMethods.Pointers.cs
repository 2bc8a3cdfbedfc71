namespace XDit.Native;

public static unsafe partial class NativeMethods
{
    /// <summary><see cref="xdit_buffer_wrap"/> for an address held as <see cref="nint"/> (a memory-mapped
    /// view), so that callers outside this assembly need no unsafe code.</summary>
    public static XditStatus xdit_buffer_wrap(ContextHandle context, nint data, ulong bytes, out BufferHandle buffer) =>
        xdit_buffer_wrap(context, ref *(byte*)data, bytes, out buffer);
}
