using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>How all-reduce combines the ranks' values.</summary>
public enum ReduceOp
{
    Sum,
    Max,
}

/// <summary>
/// The collectives of one group of ranks. Every call is collective: all ranks of the group make the
/// same calls in the same order with tensors of the same shape and dtype; a rank that diverges (another
/// operation, other sizes) makes every rank fail with a message naming the first divergence, and a rank
/// that fails or never arrives makes the others fail within <see cref="Timeout"/> — a distributed run
/// never hangs. Results are identical on every rank (reductions add in rank order).
/// </summary>
public interface ICommunicator
{
    int Rank { get; }
    int Size { get; }
    TimeSpan Timeout { get; }

    /// <summary>output[r] = rank r's <paramref name="input"/>; output is [Size, ...input's shape].</summary>
    void AllGather(Tensor input, Tensor output);

    /// <summary>Equal-chunk all-to-all: received[q] = rank q's send[Rank]; both are [Size, ...].</summary>
    void AllToAll(Tensor send, Tensor received);

    /// <summary>In place: every rank gets the element-wise sum (or max) over the ranks, added in rank order.</summary>
    void AllReduce(Tensor data, ReduceOp op = ReduceOp.Sum);

    /// <summary>Every rank gets <paramref name="root"/>'s <paramref name="data"/>.</summary>
    void Broadcast(Tensor data, int root);

    /// <summary>The ring step: <paramref name="received"/> = the <paramref name="send"/> of rank
    /// (Rank − 1) mod Size, so every rank passes its block to the next at once (MPI_Sendrecv around the
    /// ring; what ring attention moves its keys and values with).</summary>
    void Shift(Tensor send, Tensor received);

    /// <summary>Hands <paramref name="data"/> to rank <paramref name="peer"/>, which must call
    /// <see cref="Receive"/>; returns when the peer has its copy.</summary>
    void Send(Tensor data, int peer);

    void Receive(Tensor data, int peer);

    /// <summary>Starts handing <paramref name="data"/> to <paramref name="peer"/> and returns at once, so the
    /// transfer overlaps what this rank does next; <paramref name="data"/> must not change until the
    /// request's <see cref="ICommRequest.Wait"/> returns. The peer takes it with <see cref="PostReceive"/> or
    /// <see cref="Receive"/>: messages between two ranks are matched in the order they were posted.</summary>
    ICommRequest PostSend(Tensor data, int peer);

    /// <summary>Starts receiving <paramref name="peer"/>'s next message into <paramref name="data"/> (same
    /// dtype and shape as the one sent), which holds it once the request's <see cref="ICommRequest.Wait"/>
    /// returns.</summary>
    ICommRequest PostReceive(Tensor data, int peer);

    void Barrier();

    /// <summary>Collective: ranks with the same <paramref name="color"/> form a new group, ordered by
    /// <paramref name="key"/> (then by rank).</summary>
    ICommunicator Split(int color, int key);
}
