using XDit.Native;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// A communicator over NCCL (the native library loads <c>libnccl.so.2</c>, or <c>XDIT_NCCL_LIB</c>, at run
/// time): one rank per GPU, moving the device memory of one CUDA context, each transfer ordered on that
/// context's stream after the kernels that produced its data. NCCL needs one GPU per rank; ranks that share
/// a GPU use the in-process communicator.
/// </summary>
public sealed class NcclCommunicator : NativeCommunicator
{
    NcclCommunicator(CommHandle handle, TimeSpan timeout, DeviceContext context) : base(handle, timeout, "NCCL", DeviceKind.Cuda, context) { }

    /// <summary>The loaded NCCL's version as NCCL encodes it (2.21.5 is 22105); fails with
    /// <see cref="XditStatus.Unavailable"/>, naming what was tried, where NCCL cannot be loaded.</summary>
    public static int Version
    {
        get
        {
            XDitLibrary.EnsureLoaded();
            NativeStatus.Check(NativeMethods.xdit_comm_nccl_version(out var version));
            return version;
        }
    }

    /// <summary>
    /// Collective over <paramref name="bootstrap"/> (an in-process or MPI communicator, one rank per GPU):
    /// its rank 0 makes NCCL's unique id and broadcasts it, then every rank joins the NCCL communicator of
    /// the same rank and size on <paramref name="context"/>, a CUDA context. The bootstrap's bound applies
    /// to the id's broadcast; NCCL's own initialisation then waits for every rank.
    /// </summary>
    public static NcclCommunicator Create(ICommunicator bootstrap, DeviceContext context, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        ArgumentNullException.ThrowIfNull(context);
        XDitLibrary.EnsureLoaded();
        if (context.Device.Kind != DeviceKind.Cuda)
            throw new XDitException(XditStatus.Unsupported, $"NCCL moves device memory: its context must be a CUDA context, not {context.Device}");
        var id = new byte[NativeConstants.XDIT_NCCL_ID_BYTES];
        var made = XditStatus.Ok;
        if (bootstrap.Rank == 0) made = NativeMethods.xdit_comm_nccl_unique_id(out id[0], (ulong)id.Length);
        // Every rank learns whether rank 0 could make the id before anyone waits inside NCCL.
        using (var host = DeviceContext.Cpu(1))
        using (var scope = new TensorScope())
        {
            var status = Tensor.FromArray(host, new[] { (int)made }, 1);
            bootstrap.Broadcast(status, 0);
            var agreed = (XditStatus)status.ToArray<int>()[0];
            if (bootstrap.Rank == 0) NativeStatus.Check(made);
            else if (agreed != XditStatus.Ok)
                throw new XDitException(agreed, "rank 0 could not make NCCL's unique id (see rank 0's error)");
            var shared = Tensor.FromArray(host, id.Select(b => (int)b).ToArray(), id.Length);
            bootstrap.Broadcast(shared, 0);
            id = shared.ToArray<int>().Select(b => (byte)b).ToArray();
        }
        var wait = timeout ?? bootstrap.Timeout;
        NativeStatus.Check(NativeMethods.xdit_comm_nccl_init(context.Handle, in id[0], (ulong)id.Length, bootstrap.Rank, bootstrap.Size,
            wait.TotalSeconds, out var handle));
        return new NcclCommunicator(handle, wait, context);
    }
}
