namespace XDit.Parallel;

/// <summary>
/// A point-to-point transfer in flight (<see cref="ICommunicator.PostSend"/>,
/// <see cref="ICommunicator.PostReceive"/>). <see cref="Wait"/> finishes it within the communicator's
/// timeout. Disposing a request that was not waited for abandons it: the transfer may still touch its
/// memory, so that memory is kept for the rest of the process rather than reused.
/// </summary>
public interface ICommRequest : IDisposable
{
    /// <summary>Returns when a send's tensor may change again, or a receive's tensor holds the message;
    /// waiting again returns at once.</summary>
    void Wait();
}

/// <summary>Memory of abandoned transfers, held so that a late transfer never writes into or reads from
/// memory the allocator has handed out again. Only error and cancellation paths abandon.</summary>
internal static class AbandonedTransfers
{
    static readonly List<Tensors.Tensor> Held = [];

    public static void Hold(Tensors.Tensor memory)
    {
        lock (Held) Held.Add(memory);
    }
}
