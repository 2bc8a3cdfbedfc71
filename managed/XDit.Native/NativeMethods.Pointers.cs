namespace XDit.Native;

public static unsafe partial class NativeMethods
{
    /// <summary><see cref="xdit_buffer_wrap"/> for an address held as <see cref="nint"/> (a memory-mapped
    /// view), so that callers outside this assembly need no unsafe code.</summary>
    public static XditStatus xdit_buffer_wrap(ContextHandle context, nint data, ulong bytes, out BufferHandle buffer) =>
        xdit_buffer_wrap(context, ref *(byte*)data, bytes, out buffer);

    // The communicators move host memory given by address (a CPU tensor's elements).

    public static XditStatus xdit_comm_all_gather(CommHandle comm, nint send, nint received, long bytes) =>
        xdit_comm_all_gather(comm, in *(byte*)send, ref *(byte*)received, bytes);

    public static XditStatus xdit_comm_all_to_all(CommHandle comm, nint send, nint received, long bytesPerRank) =>
        xdit_comm_all_to_all(comm, in *(byte*)send, ref *(byte*)received, bytesPerRank);

    public static XditStatus xdit_comm_broadcast(CommHandle comm, nint data, long bytes, int root) =>
        xdit_comm_broadcast(comm, ref *(byte*)data, bytes, root);

    public static XditStatus xdit_comm_shift(CommHandle comm, nint send, nint received, long bytes) =>
        xdit_comm_shift(comm, in *(byte*)send, ref *(byte*)received, bytes);

    public static XditStatus xdit_comm_send(CommHandle comm, nint data, long bytes, int peer) =>
        xdit_comm_send(comm, in *(byte*)data, bytes, peer);

    public static XditStatus xdit_comm_receive(CommHandle comm, nint data, long bytes, int peer) =>
        xdit_comm_receive(comm, ref *(byte*)data, bytes, peer);

    // The posted forms keep the address after they return: it must be native memory (a tensor's), never
    // a managed array.

    public static XditStatus xdit_comm_post_send(CommHandle comm, nint data, long bytes, int peer, out CommRequestHandle request) =>
        xdit_comm_post_send(comm, in *(byte*)data, bytes, peer, out request);

    public static XditStatus xdit_comm_post_receive(CommHandle comm, nint data, long bytes, int peer, out CommRequestHandle request) =>
        xdit_comm_post_receive(comm, ref *(byte*)data, bytes, peer, out request);
}
