using XDit.Native;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// A communicator of the native library (<c>xdit_comm_*</c>) over one kind of memory: host memory for
/// <see cref="MpiCommunicator"/>, the device memory of one CUDA context for <see cref="NcclCommunicator"/>.
/// Views are packed before they travel. Every call is bounded by <see cref="Timeout"/> (a rank that fails or
/// diverges makes the others fail with a Timeout error, never a hang). All-reduce gathers and adds in rank
/// order, so every rank gets the same bits, as in-process ranks do.
/// </summary>
public class NativeCommunicator : ICommunicator, IDisposable
{
    readonly CommHandle _handle;
    readonly string _name;
    readonly DeviceKind _memory;
    readonly DeviceContext? _context;

    /// <param name="name">The backend's name in messages ("MPI", "NCCL").</param>
    /// <param name="memory">Where the tensors it moves must live.</param>
    /// <param name="context">The one context whose tensors it moves (its stream orders the transfers), or
    /// null for any context of <paramref name="memory"/>.</param>
    private protected NativeCommunicator(CommHandle handle, TimeSpan timeout, string name, DeviceKind memory, DeviceContext? context)
    {
        _handle = handle;
        _name = name;
        _memory = memory;
        _context = context;
        Timeout = timeout;
        NativeStatus.Check(NativeMethods.xdit_comm_rank(handle, out var rank));
        NativeStatus.Check(NativeMethods.xdit_comm_size(handle, out var size));
        Rank = rank;
        Size = size;
    }

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
        RequireMemory(data);
        // The request holds the packed elements (a shared handle when data is contiguous) until it completes.
        var packed = data.IsContiguous ? data.Share() : data.Contiguous().MoveToOuterScope(null);
        return Post(packed, null, (nint address, out CommRequestHandle request) =>
            NativeMethods.xdit_comm_post_send(_handle, address, Collectives.Bytes(data), peer, out request));
    }

    public ICommRequest PostReceive(Tensor data, int peer)
    {
        RequireMemory(data);
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
            return new NativeRequest(_handle, request, memory, unpackInto);
        }
        catch
        {
            memory.Dispose();
            throw;
        }
    }

    /// <summary>A posted transfer with the memory it reads or fills, and for a receive into a view, the view
    /// to copy into when it completes.</summary>
    sealed class NativeRequest : ICommRequest
    {
        readonly CommHandle _comm;
        readonly CommRequestHandle _request;
        readonly Tensor _memory;
        readonly Tensor? _unpackInto;
        bool _done, _commReferenced;

        public NativeRequest(CommHandle comm, CommRequestHandle request, Tensor memory, Tensor? unpackInto)
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
        return new NativeCommunicator(part, Timeout, _name, _memory, _context);
    }

    public void Dispose() => _handle.Dispose();

    /// <summary>Runs a collective from <paramref name="input"/>'s elements into <paramref name="output"/>'s,
    /// through packed copies where either is a view.</summary>
    void Exchange(Tensor input, Tensor output, Func<nint, nint, XditStatus> collective)
    {
        RequireMemory(input);
        RequireMemory(output);
        using var packedInput = Packed(input);
        using var target = output.IsContiguous ? null : Tensor.Empty(output.Context, output.DType, output.Shape.ToArray());
        NativeStatus.Check(collective(packedInput.DataAddress, (target ?? output).DataAddress));
        if (target is not null) Elementwise.Copy(target, output);
    }

    /// <summary>Runs an operation that reads and writes <paramref name="data"/> in place.</summary>
    void InPlace(Tensor data, Func<nint, XditStatus> operation)
    {
        RequireMemory(data);
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
    Tensor Packed(Tensor t)
    {
        RequireMemory(t);
        return t.Contiguous();
    }

    void RequireMemory(Tensor t)
    {
        if (t.Device.Kind != _memory)
            throw new XDitException(XditStatus.Unsupported, _memory == DeviceKind.Cpu
                ? $"the {_name} communicator moves host memory; {t} lives on {t.Device} (GPU ranks use NCCL, or in-process ranks)"
                : $"the {_name} communicator moves device memory; {t} lives on {t.Device}");
        if (_context is not null && !ReferenceEquals(t.Context, _context))
            throw new XDitException(XditStatus.InvalidArgument,
                $"the {_name} communicator orders its transfers on its context's stream; {t} belongs to another context (copy it first)");
    }
}
