namespace XDit.Parallel;

/// <summary>The collectives a rank issued and the bytes it sent with them.</summary>
public readonly record struct CollectiveVolume(long Calls, long BytesSent)
{
    public static CollectiveVolume operator +(CollectiveVolume a, CollectiveVolume b) => new(a.Calls + b.Calls, a.BytesSent + b.BytesSent);
    public static CollectiveVolume operator -(CollectiveVolume a, CollectiveVolume b) => new(a.Calls - b.Calls, a.BytesSent - b.BytesSent);
}

/// <summary>
/// Counts, per rank thread, the collectives issued and the bytes each sends by the standard algorithms
/// (so that the numbers hold for any backend): an all-to-all sends the (N − 1)/N of its buffer meant for
/// the others, a ring all-gather (N − 1) copies of its input, a ring all-reduce 2(N − 1)/N of its data, a
/// shift or a send its tensor, a broadcast root its tensor. Benchmarks read it around a step to report
/// the communication volume a mesh implies (<c>DESIGN.md</c> §5b) next to the time it took.
/// </summary>
public static class CommunicationCounter
{
    [ThreadStatic] static Dictionary<string, CollectiveVolume>? _volumes;

    /// <summary>The volumes counted on this thread so far, by collective (all_to_all, all_gather,
    /// all_reduce, shift, broadcast, send).</summary>
    public static IReadOnlyDictionary<string, CollectiveVolume> Snapshot() =>
        _volumes is null ? new Dictionary<string, CollectiveVolume>() : new Dictionary<string, CollectiveVolume>(_volumes);

    internal static void Add(string collective, long bytesSent)
    {
        _volumes ??= [];
        _volumes[collective] = _volumes.GetValueOrDefault(collective) + new CollectiveVolume(1, bytesSent);
    }

    /// <summary>What was counted between two snapshots.</summary>
    public static Dictionary<string, CollectiveVolume> Difference(IReadOnlyDictionary<string, CollectiveVolume> after,
        IReadOnlyDictionary<string, CollectiveVolume> before) =>
        after.ToDictionary(p => p.Key, p => p.Value - before.GetValueOrDefault(p.Key));
}
