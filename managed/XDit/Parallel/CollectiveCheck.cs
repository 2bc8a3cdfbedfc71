using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>One collective's outcome in a <see cref="CollectiveCheck"/>.</summary>
public sealed record CollectiveOutcome(string Collective, bool Passed, string Detail);

/// <summary>
/// Exercises every collective of a communicator with rank-dependent values and compares each result
/// with the sequential reference computed here from the same formulas: the check a user runs on a new
/// MPI installation (<c>mpirun -np N xdit check --comm mpi</c>) and the tests run on every backend. Every
/// rank of <paramref name="comm"/> calls <see cref="Run"/> together.
/// </summary>
public static class CollectiveCheck
{
    static float Value(int rank, int i) => rank * 100f + i * 0.5f;

    static float[] Values(int rank, int count) => Enumerable.Range(0, count).Select(i => Value(rank, i)).ToArray();

    public static List<CollectiveOutcome> Run(ICommunicator comm, DeviceContext context)
    {
        ArgumentNullException.ThrowIfNull(comm);
        using var scope = new TensorScope();
        int n = comm.Size, rank = comm.Rank;
        var outcomes = new List<CollectiveOutcome>();
        void Check(string name, float[] actual, float[] expected) => outcomes.Add(actual.SequenceEqual(expected)
            ? new CollectiveOutcome(name, true, $"{expected.Length} values")
            : new CollectiveOutcome(name, false, $"rank {rank}: got [{string.Join(", ", actual.Take(6))}…], expected [{string.Join(", ", expected.Take(6))}…]"));

        var mine = Tensor.FromArray(context, Values(rank, 6), 2, 3);
        var gathered = Tensor.Empty(context, DType.F32, n, 2, 3);
        comm.AllGather(mine, gathered);
        Check("all_gather", gathered.ToArray<float>(), Enumerable.Range(0, n).SelectMany(q => Values(q, 6)).ToArray());

        // A view (the transpose of a [3, 2] block) is packed before it travels.
        var strided = Tensor.FromArray(context, Values(rank, 6), 3, 2).Transpose(0, 1);
        var gatheredView = Tensor.Empty(context, DType.F32, n, 2, 3);
        comm.AllGather(strided, gatheredView);
        Check("all_gather (strided input)", gatheredView.ToArray<float>(),
            Enumerable.Range(0, n).SelectMany(q => new[] { 0, 2, 4, 1, 3, 5 }.Select(i => Value(q, i))).ToArray());

        var send = Tensor.FromArray(context, Enumerable.Range(0, 2 * n).Select(i => rank * 10f + i).ToArray(), n, 2);
        var received = Tensor.Empty(context, DType.F32, n, 2);
        comm.AllToAll(send, received);
        Check("all_to_all", received.ToArray<float>(), Enumerable.Range(0, n).SelectMany(q => new[] { q * 10f + rank * 2, q * 10f + rank * 2 + 1 }).ToArray());

        var sum = mine.Clone();
        comm.AllReduce(sum);
        Check("all_reduce sum", sum.ToArray<float>(),
            Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, n).Aggregate(0f, (total, q) => total + Value(q, i))).ToArray());

        var max = Tensor.FromArray(context, Values((rank * 7) % n, 6), 2, 3);
        comm.AllReduce(max, ReduceOp.Max);
        Check("all_reduce max", max.ToArray<float>(), Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, n).Max(q => Value((q * 7) % n, i))).ToArray());

        var broadcast = rank == n - 1 ? mine.Clone() : Tensor.Zeros(context, DType.F32, 2, 3);
        comm.Broadcast(broadcast, n - 1);
        Check("broadcast", broadcast.ToArray<float>(), Values(n - 1, 6));

        var shifted = Tensor.Empty(context, DType.F32, 2, 3);
        comm.Shift(mine, shifted);
        Check("shift", shifted.ToArray<float>(), Values((rank + n - 1) % n, 6));

        if (n > 1)
        {
            // Around the ring one message at a time: rank 0 sends first, every other rank receives first.
            var incoming = Tensor.Empty(context, DType.F32, 2, 3);
            int next = (rank + 1) % n, previous = (rank + n - 1) % n;
            if (rank == 0) { comm.Send(mine, next); comm.Receive(incoming, previous); }
            else { comm.Receive(incoming, previous); comm.Send(mine, next); }
            Check("send / receive", incoming.ToArray<float>(), Values(previous, 6));
        }

        // A GPU runs ops asynchronously: what a rank receives must be the sender's finished work (eight
        // kernels still queued when the shift starts), and the sender's next write (issued as soon as the
        // shift returns) must not reach the receiver. On the CPU this passes by construction.
        const int busyElements = 1 << 22;
        var busy = Tensor.Full(context, DType.F32, rank, busyElements);
        for (int i = 0; i < 8; i++) Elementwise.Affine(busy, 1, 1, busy);
        var busyReceived = Tensor.Empty(context, DType.F32, busyElements);
        comm.Shift(busy, busyReceived);
        Elementwise.Fill(busy, -1);
        var arrived = busyReceived.ToArray<float>();
        float expectedBusy = (rank + n - 1) % n + 8;
        var wrong = Array.FindIndex(arrived, v => v != expectedBusy);
        outcomes.Add(wrong < 0
            ? new CollectiveOutcome("shift (sender still computing)", true, $"{busyElements} values")
            : new CollectiveOutcome("shift (sender still computing)", false,
                $"rank {rank}: element {wrong} is {arrived[wrong]}, expected {expectedBusy} (the copy did not wait for the sender's kernels, or the sender overwrote it)"));

        // Groups of equal parity, ordered by descending rank.
        var group = comm.Split(rank % 2, key: -rank);
        var groupRanks = Tensor.Empty(context, DType.F32, group.Size, 1);
        group.AllGather(Tensor.FromArray(context, new[] { (float)rank }, 1), groupRanks);
        Check("split", groupRanks.ToArray<float>(), Enumerable.Range(0, n).Where(q => q % 2 == rank % 2).OrderByDescending(q => q).Select(q => (float)q).ToArray());
        (group as IDisposable)?.Dispose();

        comm.Barrier();
        outcomes.Add(new CollectiveOutcome("barrier", true, "all ranks arrived"));
        return outcomes;
    }
}
