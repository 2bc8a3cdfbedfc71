using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// A communicator for ranks that are threads of one process (<see cref="InProcessWorld"/>): ranks post
/// their tensors at a <see cref="Rendezvous"/> and copy from each other's memory directly (CPU contexts
/// share host memory; CUDA contexts copy device to device, ordered with the peer's stream by events), so
/// a collective costs one copy per received chunk. Each collective has a second phase so that no rank
/// reuses a buffer another rank is still reading.
/// </summary>
internal sealed class InProcessCommunicator(Rendezvous group, int rank, TimeSpan timeout, Func<Rendezvous, int, ICommunicator> create)
    : ICommunicator
{
    public int Rank => rank;
    public int Size => group.Size;
    public TimeSpan Timeout => timeout;

    object?[] Exchange(object? value, string signature) => group.Exchange(rank, value, signature, timeout);

    static string Describe(string op, Tensor t) => $"{op}({t.DType.Name()} {t.ShapeString})";

    public void AllGather(Tensor input, Tensor output)
    {
        Collectives.RequireShape(output, [Size, .. input.Shape.ToArray()], "all_gather output");
        CommunicationCounter.Add("all_gather", Collectives.Bytes(input) * (Size - 1));
        var inputs = Exchange(input, Describe("all_gather", input));
        for (int r = 0; r < Size; r++)
        {
            using var slot = output.Narrow(0, r, 1).Squeeze(0);
            Elementwise.Copy((Tensor)inputs[r]!, slot);
        }
        Exchange(null, "all_gather done");
    }

    public void AllToAll(Tensor send, Tensor received)
    {
        if (send.Rank < 1 || send.Size(0) != Size)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"all_to_all send {send.ShapeString} must have {Size} chunks in its first dimension");
        Collectives.RequireShape(received, send.Shape.ToArray(), "all_to_all received");
        CommunicationCounter.Add("all_to_all", Collectives.Bytes(send) / Size * (Size - 1));
        var sends = Exchange(send, Describe("all_to_all", send));
        for (int q = 0; q < Size; q++)
        {
            using var source = ((Tensor)sends[q]!).Narrow(0, rank, 1);
            using var target = received.Narrow(0, q, 1);
            Elementwise.Copy(source, target);
        }
        Exchange(null, "all_to_all done");
    }

    public void Shift(Tensor send, Tensor received)
    {
        Collectives.RequireShape(received, send.Shape.ToArray(), "shift received");
        CommunicationCounter.Add("shift", Size > 1 ? Collectives.Bytes(send) : 0);
        var sends = Exchange(send, Describe("shift", send));
        Elementwise.Copy((Tensor)sends[(rank + Size - 1) % Size]!, received);
        Exchange(null, "shift done");
    }

    public void AllReduce(Tensor data, ReduceOp op = ReduceOp.Sum)
    {
        CommunicationCounter.Add("all_reduce", Collectives.Bytes(data) * 2 * (Size - 1) / Size);
        var inputs = Exchange(data, Describe($"all_reduce_{op.ToString().ToLowerInvariant()}", data));
        // Every rank adds in rank order into its own temporary, so all ranks get the same bits.
        using var scope = new TensorScope();
        var total = data.Clone();
        Collectives.ReduceInRankOrder(inputs.Select(i => Collectives.Readable((Tensor)i!, data.Context)).ToList(), op, total);
        Exchange(null, "all_reduce read");
        Elementwise.Copy(total, data);
    }

    public void Broadcast(Tensor data, int root)
    {
        CheckPeer(root, "broadcast root");
        CommunicationCounter.Add("broadcast", rank == root ? Collectives.Bytes(data) : 0);
        var inputs = Exchange(rank == root ? data : null, Describe($"broadcast(root {root})", data));
        if (rank != root) Elementwise.Copy((Tensor)inputs[root]!, data);
        Exchange(null, "broadcast done");
    }

    public void Send(Tensor data, int peer)
    {
        using var request = PostSend(data, peer);
        request.Wait();
    }

    public void Receive(Tensor data, int peer)
    {
        using var request = PostReceive(data, peer);
        request.Wait();
    }

    public ICommRequest PostSend(Tensor data, int peer)
    {
        CheckPointToPoint(peer, "send");
        CommunicationCounter.Add("send", Collectives.Bytes(data));
        var description = $"send {rank}->{peer} {data.DType.Name()} {data.ShapeString}";
        var channel = group.Mailboxes.Between(rank, peer);
        var shared = data.Share();
        try
        {
            return new InProcessSend(channel, channel.Post(shared, description), timeout, group.Break);
        }
        catch
        {
            shared.Dispose();
            throw;
        }
    }

    public ICommRequest PostReceive(Tensor data, int peer)
    {
        CheckPointToPoint(peer, "receive");
        var channel = group.Mailboxes.Between(peer, rank);
        return new InProcessReceive(channel, channel.ReserveReceive(), data, $"receive {peer}->{rank}", timeout, group.Break);
    }

    void CheckPointToPoint(int peer, string operation)
    {
        CheckPeer(peer, $"{operation} peer");
        if (peer == rank)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"rank {rank} cannot {operation} {(operation == "send" ? "to" : "from")} itself");
    }

    public void Barrier() => Exchange(null, "barrier");

    public ICommunicator Split(int color, int key)
    {
        var members = Exchange((color, key, rank), "split");
        var subgroup = members.Select(m => ((int Color, int Key, int Rank))m!).Where(m => m.Color == color)
            .OrderBy(m => m.Key).ThenBy(m => m.Rank).Select(m => m.Rank).ToList();
        var newRank = subgroup.IndexOf(rank);
        // The group's first rank makes its rendezvous; the others take it in a second phase.
        Rendezvous? mine = null;
        if (newRank == 0)
        {
            mine = new Rendezvous(subgroup.Count);
            group.Adopt(mine);
        }
        var made = Exchange(mine, "split publish");
        var rendezvous = (Rendezvous)made[subgroup[0]]!;
        return create(rendezvous, newRank);
    }

    void CheckPeer(int peer, string what)
    {
        if (peer < 0 || peer >= Size)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{what} {peer} is outside the group of {Size} ranks");
    }
}
