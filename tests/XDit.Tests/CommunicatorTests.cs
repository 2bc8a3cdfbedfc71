using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The in-process communicator: every collective against a sequential reference computed
/// here, sub-groups, send/receive, and the failure modes (a failing rank, a rank that never arrives,
/// diverging collectives) ending every rank with an error instead of a hang.</summary>
[TestFixture]
public class CommunicatorTests
{
    static float[] Values(int rank, int count) => Enumerable.Range(0, count).Select(i => rank * 100f + i * 0.5f).ToArray();

    [TestCase(1)]
    [TestCase(2)]
    [TestCase(3)]
    [TestCase(4)]
    public void CollectivesMatchASequentialReference(int size)
    {
        var results = InProcessWorld.Run(size, comm =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var scope = new TensorScope();
            var mine = Tensor.FromArray(context, Values(comm.Rank, 6), 2, 3);

            var gathered = Tensor.Empty(context, DType.F32, comm.Size, 2, 3);
            comm.AllGather(mine, gathered);

            var send = Tensor.FromArray(context, Enumerable.Range(0, comm.Size * 2).Select(i => comm.Rank * 10f + i).ToArray(), comm.Size, 2);
            var received = Tensor.Empty(context, DType.F32, comm.Size, 2);
            comm.AllToAll(send, received);

            var shifted = Tensor.Empty(context, DType.F32, 2, 3);
            comm.Shift(mine, shifted);

            var sum = mine.Clone();
            comm.AllReduce(sum);
            var max = Tensor.FromArray(context, Values((comm.Rank * 7) % comm.Size, 6), 2, 3);
            comm.AllReduce(max, ReduceOp.Max);

            var broadcast = comm.Rank == comm.Size - 1 ? mine.Clone() : Tensor.Zeros(context, DType.F32, 2, 3);
            comm.Broadcast(broadcast, comm.Size - 1);
            comm.Barrier();
            return (Gathered: gathered.ToArray<float>(), Received: received.ToArray<float>(), Sum: sum.ToArray<float>(),
                Max: max.ToArray<float>(), Broadcast: broadcast.ToArray<float>(), Shifted: shifted.ToArray<float>());
        }, TimeSpan.FromSeconds(20));

        var expectedGather = Enumerable.Range(0, size).SelectMany(r => Values(r, 6)).ToArray();
        var expectedSum = Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, size).Select(r => Values(r, 6)[i]).Aggregate(0f, (a, b) => a + b)).ToArray();
        var expectedMax = Enumerable.Range(0, 6).Select(i => Enumerable.Range(0, size).Select(r => Values((r * 7) % size, 6)[i]).Max()).ToArray();
        for (int rank = 0; rank < size; rank++)
        {
            Assert.That(results[rank].Gathered, Is.EqualTo(expectedGather), $"all_gather on rank {rank}");
            var expectedReceived = Enumerable.Range(0, size).SelectMany(q => new[] { q * 10f + rank * 2, q * 10f + rank * 2 + 1 }).ToArray();
            Assert.That(results[rank].Received, Is.EqualTo(expectedReceived), $"all_to_all on rank {rank}");
            Assert.That(results[rank].Sum, Is.EqualTo(expectedSum), $"all_reduce sum on rank {rank}");
            Assert.That(results[rank].Max, Is.EqualTo(expectedMax), $"all_reduce max on rank {rank}");
            Assert.That(results[rank].Broadcast, Is.EqualTo(Values(size - 1, 6)), $"broadcast on rank {rank}");
            Assert.That(results[rank].Shifted, Is.EqualTo(Values((rank + size - 1) % size, 6)), $"shift on rank {rank}");
        }
    }

    /// <summary>The check that <c>xdit check --comm</c> runs (the same one the MPI tests run under mpirun).</summary>
    [TestCase(1)]
    [TestCase(2)]
    [TestCase(5)]
    public void CollectiveCheckPassesInProcess(int size)
    {
        var outcomes = InProcessWorld.Run(size, comm =>
        {
            using var context = Contexts.Cpu(threads: 1);
            return CollectiveCheck.Run(comm, context);
        }, TimeSpan.FromSeconds(20));
        foreach (var rank in outcomes)
            Assert.That(rank.Where(o => !o.Passed).Select(o => $"{o.Collective}: {o.Detail}"), Is.Empty);
        Assert.That(outcomes[0].Select(o => o.Collective), Does.Contain("shift").And.Contain("all_to_all"));
    }

    /// <summary>The debug wrapper names the first diverging call itself (before the backend would time out),
    /// and passes every collective through unchanged.</summary>
    [Test]
    public void CheckedCommunicatorNamesTheFirstDivergence()
    {
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(3, world =>
        {
            using var comm = new CheckedCommunicator(world);
            using var context = Contexts.Cpu(threads: 1);
            using var scope = new TensorScope();
            comm.Barrier();
            var data = Tensor.Zeros(context, DType.F32, world.Rank == 2 ? 5 : 4);
            comm.AllReduce(data);
            return 0;
        }, TimeSpan.FromSeconds(20)))!;
        Assert.That(error.Message, Does.Contain("rank 0 called #2 all_reduce_sum(f32 [4]) while rank 2 called #2 all_reduce_sum(f32 [5])"));

        var outcomes = InProcessWorld.Run(3, world =>
        {
            using var comm = new CheckedCommunicator(world);
            using var context = Contexts.Cpu(threads: 1);
            return CollectiveCheck.Run(comm, context);
        }, TimeSpan.FromSeconds(20));
        Assert.That(outcomes.SelectMany(o => o).Where(o => !o.Passed), Is.Empty);
    }

    [Test]
    public void SplitGroupsAndSendReceive()
    {
        // 4 ranks: colour = rank % 2 gives groups {0, 2} and {1, 3}; keys reverse the order inside them.
        var results = InProcessWorld.Run(4, comm =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var scope = new TensorScope();
            var group = comm.Split(comm.Rank % 2, key: -comm.Rank);
            var mine = Tensor.FromArray(context, new[] { (float)comm.Rank }, 1);
            var gathered = Tensor.Empty(context, DType.F32, group.Size, 1);
            group.AllGather(mine, gathered);
            // A ring of sends: rank r sends to r + 1, receives from r − 1 (even ranks send first).
            var incoming = Tensor.Empty(context, DType.F32, 1);
            var next = (comm.Rank + 1) % comm.Size;
            var previous = (comm.Rank + comm.Size - 1) % comm.Size;
            if (comm.Rank % 2 == 0) { comm.Send(mine, next); comm.Receive(incoming, previous); }
            else { comm.Receive(incoming, previous); comm.Send(mine, next); }
            return (GroupRank: group.Rank, Gathered: gathered.ToArray<float>(), Incoming: incoming.ToArray<float>()[0]);
        }, TimeSpan.FromSeconds(20));
        Assert.That(results.Select(r => r.GroupRank), Is.EqualTo(new[] { 1, 1, 0, 0 }));
        Assert.That(results[0].Gathered, Is.EqualTo(new[] { 2f, 0f }));
        Assert.That(results[3].Gathered, Is.EqualTo(new[] { 3f, 1f }));
        Assert.That(results.Select(r => r.Incoming), Is.EqualTo(new[] { 3f, 0f, 1f, 2f }));
    }

    [Test]
    public void AFailingRankEndsEveryRankWithItsName()
    {
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(3, comm =>
        {
            if (comm.Rank == 1) throw new InvalidOperationException("out of cheese");
            comm.Barrier();
            return 0;
        }, TimeSpan.FromSeconds(30)))!;
        Assert.That(error.Message, Does.Contain("rank 1 failed: out of cheese"));
    }

    [Test]
    public void AMissingRankTimesOutInsteadOfHanging()
    {
        var started = DateTime.UtcNow;
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(2, comm =>
        {
            if (comm.Rank == 0) comm.Barrier();
            else Thread.Sleep(3000); // never joins the barrier
            return 0;
        }, TimeSpan.FromSeconds(1)))!;
        Assert.That(error.Status, Is.EqualTo(XDit.Native.XditStatus.Timeout));
        Assert.That(error.Message, Does.Contain("timed out").And.Contain("barrier"));
        Assert.That(DateTime.UtcNow - started, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public void DivergingCollectivesAreNamed()
    {
        var error = Assert.Throws<XDitException>(() => InProcessWorld.Run(2, comm =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var t = Tensor.Zeros(context, DType.F32, comm.Rank + 1);
            comm.AllReduce(t);
            return 0;
        }, TimeSpan.FromSeconds(20)))!;
        Assert.That(error.Message, Does.Contain("collective mismatch").And.Contain("all_reduce_sum(f32 [1])").And.Contain("all_reduce_sum(f32 [2])"));
    }
}
