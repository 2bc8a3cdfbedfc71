namespace XDit.Parallel;

/// <summary>
/// N ranks as N threads of this process, each with its own communicator (and, in the caller's body,
/// its own context): the launch mode an embedding .NET host needs, no launcher involved. When a rank
/// throws, the world is broken and every other rank fails at its next (or current) collective; the
/// run then reports the first failure, naming its rank.
/// </summary>
public static class InProcessWorld
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs <paramref name="body"/> on <paramref name="size"/> threads and returns each rank's result.</summary>
    public static T[] Run<T>(int size, Func<ICommunicator, T> body, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        var (ranks, world) = Create(size, timeout ?? DefaultTimeout);
        var results = new T[size];
        var errors = new Exception?[size];
        var threads = Enumerable.Range(0, size).Select(rank => new Thread(() =>
        {
            try
            {
                results[rank] = body(ranks[rank]);
            }
            catch (Exception e)
            {
                errors[rank] = e;
                world.Break($"rank {rank} failed: {e.Message}");
            }
        }) { IsBackground = true, Name = $"xdit-rank-{rank}" }).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        ThrowFirstFailure(errors, world);
        return results;
    }

    /// <summary>The communicators of a new world of <paramref name="size"/> ranks (one per rank thread the
    /// caller runs), and the group to <see cref="Rendezvous.Break"/> when a rank fails.</summary>
    internal static (ICommunicator[] Ranks, Rendezvous World) Create(int size, TimeSpan timeout)
    {
        var world = new Rendezvous(size);
        ICommunicator Make(Rendezvous group, int rank) => new InProcessCommunicator(group, rank, timeout, Make);
        return (Enumerable.Range(0, size).Select(rank => Make(world, rank)).ToArray(), world);
    }

    /// <summary>Throws what a run whose ranks ended with <paramref name="errors"/> must throw: the agreed
    /// cancellation when every rank was cancelled, else the first failure (not a consequent timeout),
    /// naming its rank.</summary>
    internal static void ThrowFirstFailure(Exception?[] errors, Rendezvous world)
    {
        var size = errors.Length;
        if (errors.All(e => e is null)) return;
        // Cancellation agreed at a step boundary stops every rank with the same exception: the run was cancelled.
        if (errors.All(e => e is OperationCanceledException)) throw (OperationCanceledException)errors[0]!;
        var first = Enumerable.Range(0, size).FirstOrDefault(r => errors[r] is not null and not XDitException { Status: Native.XditStatus.Timeout }, -1);
        if (first < 0) first = Array.FindIndex(errors, e => e is not null);
        if (first >= 0)
            throw new XDitException(errors[first] is XDitException x ? x.Status : Native.XditStatus.Internal,
                world.BrokenReason ?? $"rank {first} failed: {errors[first]!.Message}");
    }
}
