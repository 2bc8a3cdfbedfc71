using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// A communicator over Open MPI (the native library loads <c>libmpi.so.40</c> at run time): one rank per
/// process, launched by <c>mpirun</c>. Tensors live on CPU contexts; views are packed before they are
/// sent. Every collective is bounded by <see cref="Timeout"/> (a rank that fails or diverges makes the
/// others fail with a Timeout error, never a hang), and MPI runs with MPI_ERRORS_RETURN. All-reduce
/// gathers and adds in rank order, so every rank gets the same bits, as in-process ranks do.
/// </summary>
public sealed class MpiCommunicator : ICommunicator, IDisposable
{
    readonly CommHandle _handle;

    MpiCommunicator(CommHandle handle, TimeSpan timeout)
    {
        _handle = handle;
        Timeout = timeout;
        NativeStatus.Check(NativeMethods.xdit_comm_rank(handle, out var rank));
        NativeStatus.Check(NativeMethods.xdit_comm_size(handle, out var size));
        Rank = rank;
        Size = size;
    }

    /// <summary>True when this process was started by Open MPI's launcher (<c>mpirun</c>).</summary>
    public static bool LaunchedByMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is not null;

    /// <summary>Every process of the job (MPI_COMM_WORLD, duplicated); initialises MPI on first use.
    /// Fails with <see cref="XditStatus.Unavailable"/> where Open MPI is not installed.</summary>
    public static MpiCommunicator World(TimeSpan? timeout = null)
    {
        XDitLibrary.EnsureLoaded();
        var wait = timeout ?? InProcessWorld.DefaultTimeout;
        NativeStatus.Check(NativeMethods.xdit_comm_mpi_world(wait.TotalSeconds, out var handle));
        return new MpiCommunicator(handle, wait);
    }

    /// <summary>Finalises MPI (after every communicator is disposed): the process's last MPI call.</summary>
    public static void FinalizeMpi() => NativeStatus.Check(NativeMethods.xdit_comm_mpi_finalize());

    public int Rank { get; }
    public int Size { get; }
    public TimeSpan Timeout { get; }

    public void AllGather(Tensor input, Tensor output)
    {
        Collectives.RequireShape(output, [Size, .. input.Shape.ToArray()], "all_gather output");
        Collectives.RequireSameDType(input, output, "all_gather");
        CommunicationCounter.Add("all_gather", Collectives.Bytes(input) * (Size - 1));
        Exchange(input, output, (send, received) =>
            NativeMethods.xdit_comm_all_gather(_handle, send, received, Collectives.Bytes(input)));
    }

    public void AllToAll(Tensor send, Tensor received)
    {
        if (send.Rank < 1 || send.Size(0) != Size)
            throw new XDitException(XditStatus.InvalidArgument, $"all_to_all send {send.ShapeString} must have {Size} chunks in its first dimension");
        Collectives.RequireShape(received, send.Shape.ToArray(), "all_to_all received");
        Collectives.RequireSameDType(send, received, "all_to_all");
        CommunicationCounter.Add("all_to_all", Collectives.Bytes(send) / Size * (Size - 1));
        Exchange(send, received, (s, r) => NativeMethods.xdit_comm_all_to_all(_handle, s, r, Collectives.Bytes(send) / Size));
    }

    public void AllReduce(Tensor data, ReduceOp op = ReduceOp.Sum)
    {
        CommunicationCounter.Add("all_reduce", Collectives.Bytes(data) * 2 * (Size - 1) / Size);
        using var scope = new TensorScope();
        var gathered = Tensor.Empty(data.Context, data.DType, [Size, .. data.Shape.ToArray()]);
        Exchange(data, gathered, (send, received) => NativeMethods.xdit_comm_all_gather(_handle, send, received, Collectives.Bytes(data)));
        Collectives.ReduceInRankOrder(Enumerable.Range(0, Size).Select(r => gathered.Narrow(0, r, 1).Squeeze(0)).ToList(), op, data);
    }

    public void Broadcast(Tensor data, int root)
    {
        CommunicationCounter.Add("broadcast", Rank == root ? Collectives.Bytes(data) : 0);
        InPlace(data, address => NativeMethods.xdit_comm_broadcast(_handle, address, Collectives.Bytes(data), root));
    }

    public void Shift(Tensor send, Tensor received)
    {
        Collectives.RequireShape(received, send.Shape.ToArray(), "shift received");
        Collectives.RequireSameDType(send, received, "shift");
        CommunicationCounter.Add("shift", Size > 1 ? Collectives.Bytes(send) : 0);
        Exchange(send, received, (s, r) => NativeMethods.xdit_comm_shift(_handle, s, r, Collectives.Bytes(send)));
    }

    public void Send(Tensor data, int peer)
    {
        CommunicationCounter.Add("send", Collectives.Bytes(data));
        using var packed = Packed(data);
        NativeStatus.Check(NativeMethods.xdit_comm_send(_handle, packed.DataAddress, Collectives.Bytes(data), peer));
    }

    public void Receive(Tensor data, int peer) =>
        InPlace(data, address => NativeMethods.xdit_comm_receive(_handle, address, Collectives.Bytes(data), peer));

    public ICommRequest PostSend(Tensor data, int peer)
    {
        CommunicationCounter.Add("send", Collectives.Bytes(data));
        RequireHost(data);
        // The request holds the packed elements (a shared handle when data is contiguous) until it completes.
        var packed = data.IsContiguous ? data.Share() : data.Contiguous().MoveToOuterScope(null);
        return Post(packed, null, (nint address, out CommRequestHandle request) =>
            NativeMethods.xdit_comm_post_send(_handle, address, Collectives.Bytes(data), peer, out request));
    }

    public ICommRequest PostReceive(Tensor data, int peer)
    {
        RequireHost(data);
        var target = data.IsContiguous ? data.Share() : Tensor.Empty(data.Context, data.DType, data.Shape.ToArray()).MoveToOuterScope(null);
        return Post(target, data.IsContiguous ? null : data, (nint address, out CommRequestHandle request) =>
            NativeMethods.xdit_comm_post_receive(_handle, address, Collectives.Bytes(data), peer, out request));
    }

    delegate XditStatus Starter(nint address, out CommRequestHandle request);

    ICommRequest Post(Tensor memory, Tensor? unpackInto, Starter start)
    {
        try
        {
            NativeStatus.Check(start(memory.DataAddress, out var request));
            return new MpiRequest(_handle, request, memory, unpackInto);
        }
        catch
        {
            memory.Dispose();
            throw;
        }
    }

    /// <summary>A posted MPI transfer with the memory it reads or fills, and for a receive into a view,
    /// the view to copy into when it completes.</summary>
    sealed class MpiRequest : ICommRequest
    {
        readonly CommHandle _comm;
        readonly CommRequestHandle _request;
        readonly Tensor _memory;
        readonly Tensor? _unpackInto;
        bool _done, _commReferenced;

        public MpiRequest(CommHandle comm, CommRequestHandle request, Tensor memory, Tensor? unpackInto)
        {
            _comm = comm;
            _request = request;
            _memory = memory;
            _unpackInto = unpackInto;
            _comm.DangerousAddRef(ref _commReferenced); // the native request must not outlive its communicator
        }

        public void Wait()
        {
            if (_done) return;
            NativeStatus.Check(NativeMethods.xdit_comm_request_wait(_request));
            if (_unpackInto is not null) Elementwise.Copy(_memory, _unpackInto);
            _done = true;
        }

        public void Dispose()
        {
            if (_request.IsClosed) return;
            _request.Dispose();
            if (_done) _memory.Dispose();
            else AbandonedTransfers.Hold(_memory);
            if (_commReferenced) _comm.DangerousRelease();
        }
    }

    public void Barrier() => NativeStatus.Check(NativeMethods.xdit_comm_barrier(_handle));

    public ICommunicator Split(int color, int key)
    {
        NativeStatus.Check(NativeMethods.xdit_comm_split(_handle, color, key, out var part));
        return new MpiCommunicator(part, Timeout);
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>Runs a collective from <paramref name="input"/>'s elements into <paramref name="output"/>'s,
    /// through packed copies where either is a view.</summary>
    static void Exchange(Tensor input, Tensor output, Func<nint, nint, XditStatus> collective)
    {
        RequireHost(input);
        RequireHost(output);
        using var packedInput = Packed(input);
        using var target = output.IsContiguous ? null : Tensor.Empty(output.Context, output.DType, output.Shape.ToArray());
        NativeStatus.Check(collective(packedInput.DataAddress, (target ?? output).DataAddress));
        if (target is not null) Elementwise.Copy(target, output);
    }

    /// <summary>Runs an operation that reads and writes <paramref name="data"/> in place.</summary>
    static void InPlace(Tensor data, Func<nint, XditStatus> operation)
    {
        RequireHost(data);
        if (data.IsContiguous)
        {
            NativeStatus.Check(operation(data.DataAddress));
            return;
        }
        using var packed = data.Contiguous();
        NativeStatus.Check(operation(packed.DataAddress));
        Elementwise.Copy(packed, data);
    }

    /// <summary>A contiguous tensor with <paramref name="t"/>'s elements: a view when it already is.</summary>
    static Tensor Packed(Tensor t)
    {
        RequireHost(t);
        return t.Contiguous();
    }

    static void RequireHost(Tensor t)
    {
        if (t.Device.Kind != DeviceKind.Cpu)
            throw new XDitException(XditStatus.Unsupported,
                $"the MPI communicator moves host memory; {t} lives on {t.Device} (NCCL is the communicator for GPUs)");
    }
}
