using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The debug check for distributed hangs: before each collective, the ranks of the group exchange what
/// they are about to call (operation, dtype, shape) through the communicator it wraps, and a rank that
/// calls something else makes every rank fail with a message naming the first divergence — instead of
/// a hang or a timeout without a cause. One small all-gather per collective; point-to-point sends are
/// not checked. The in-process communicator checks this always; use this around MPI
/// (<c>xdit generate --comm mpi --check_collectives</c>).
/// </summary>
public sealed class CheckedCommunicator(ICommunicator inner) : ICommunicator, IDisposable
{
    const int SignatureLength = 96;
    readonly DeviceContext _context = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = 1 });
    long _sequence;

    public int Rank => inner.Rank;
    public int Size => inner.Size;
    public TimeSpan Timeout => inner.Timeout;

    public void AllGather(Tensor input, Tensor output)
    {
        Agree("all_gather", input);
        inner.AllGather(input, output);
    }

    public void AllToAll(Tensor send, Tensor received)
    {
        Agree("all_to_all", send);
        inner.AllToAll(send, received);
    }

    public void AllReduce(Tensor data, ReduceOp op = ReduceOp.Sum)
    {
        Agree($"all_reduce_{op.ToString().ToLowerInvariant()}", data);
        inner.AllReduce(data, op);
    }

    public void Broadcast(Tensor data, int root)
    {
        Agree($"broadcast(root {root})", data);
        inner.Broadcast(data, root);
    }

    public void Shift(Tensor send, Tensor received)
    {
        Agree("shift", send);
        inner.Shift(send, received);
    }

    public void Send(Tensor data, int peer) => inner.Send(data, peer);

    public void Receive(Tensor data, int peer) => inner.Receive(data, peer);

    public ICommRequest PostSend(Tensor data, int peer) => inner.PostSend(data, peer);

    public ICommRequest PostReceive(Tensor data, int peer) => inner.PostReceive(data, peer);

    public void Barrier()
    {
        Agree("barrier", null);
        inner.Barrier();
    }

    public ICommunicator Split(int color, int key)
    {
        Agree("split", null);
        return new CheckedCommunicator(inner.Split(color, key));
    }

    public void Dispose()
    {
        (inner as IDisposable)?.Dispose();
        _context.Dispose();
    }

    /// <summary>All-gathers this rank's next call and throws on every rank if any rank differs.</summary>
    void Agree(string operation, Tensor? tensor)
    {
        var call = tensor is null ? operation : $"{operation}({tensor.DType.Name()} {tensor.ShapeString})";
        var signature = $"#{++_sequence} {call}";
        using var scope = new TensorScope();
        var mine = Tensor.FromArray(_context, Encode(signature), SignatureLength);
        var all = Tensor.Empty(_context, DType.I32, Size, SignatureLength);
        inner.AllGather(mine, all);
        var values = all.ToArray<int>();
        var calls = Enumerable.Range(0, Size).Select(r => Decode(values.AsSpan(r * SignatureLength, SignatureLength))).ToList();
        var diverging = calls.FindIndex(c => c != calls[0]);
        if (diverging >= 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"collective mismatch (rank {Rank} of {Size}): rank 0 called {calls[0]} while rank {diverging} called {calls[diverging]}");
    }

    static int[] Encode(string text)
    {
        var codes = new int[SignatureLength];
        for (int i = 0; i < Math.Min(text.Length, SignatureLength); i++) codes[i] = text[i];
        return codes;
    }

    static string Decode(ReadOnlySpan<int> codes)
    {
        var chars = new List<char>();
        foreach (var c in codes)
        {
            if (c == 0) break;
            chars.Add((char)c);
        }
        return new string([.. chars]);
    }
}
