namespace XDit.Parallel;

/// <summary>
/// The meeting point of one group of in-process ranks: each collective is one or more phases in which
/// every member posts a value and waits for all the others, with a deadline. The first failure (a rank
/// that throws, a deadline that passes, two ranks calling different operations) breaks the group: every
/// rank waiting now or later fails with that message.
/// </summary>
internal sealed class Rendezvous(int size)
{
    readonly object _gate = new();
    readonly object?[] _posted = new object?[size];
    readonly string[] _signatures = new string[size];
    int _arrived;
    long _phase;
    object?[]? _lastValues; // the values of the phase that completed last
    string? _broken;
    readonly List<Rendezvous> _children = [];

    public int Size => size;

    /// <summary>The channels that carry this group's sends and receives.</summary>
    public Mailboxes Mailboxes { get; } = new(size);

    public string? BrokenReason
    {
        get { lock (_gate) return _broken; }
    }

    /// <summary>Posts <paramref name="value"/> for <paramref name="rank"/> and returns everyone's values once
    /// all have posted with the same <paramref name="signature"/> (operation and sizes).</summary>
    public object?[] Exchange(int rank, object? value, string signature, TimeSpan timeout)
    {
        lock (_gate)
        {
            ThrowIfBroken();
            var phase = _phase;
            _posted[rank] = value;
            _signatures[rank] = signature;
            if (++_arrived == size)
            {
                for (int r = 1; r < size; r++)
                    if (_signatures[r] != _signatures[0])
                        Break($"collective mismatch: rank 0 called {_signatures[0]} while rank {r} called {_signatures[r]}");
                ThrowIfBroken();
                _arrived = 0;
                _phase++;
                var all = (object?[])_posted.Clone();
                _lastValues = all;
                Monitor.PulseAll(_gate);
                return all;
            }
            var deadline = DateTime.UtcNow + timeout;
            while (_phase == phase && _broken is null)
            {
                var remaining = deadline - DateTime.UtcNow;
                if (remaining <= TimeSpan.Zero)
                {
                    Break($"rank {rank} timed out after {timeout.TotalSeconds:F0} s in {signature}: {size - _arrived} of {size} ranks did not arrive");
                    break;
                }
                Monitor.Wait(_gate, remaining);
            }
            // A phase that completed stays completed: a rank that fails right after it (every rank throwing
            // the same agreed cancellation, say) must not turn this rank's finished collective into an error.
            if (_phase != phase) return _lastValues!;
            ThrowIfBroken();
            return _lastValues!;
        }
    }

    /// <summary>Marks the group broken (a rank failed); waiting ranks wake and fail with the reason, and so
    /// do the ranks of every group split from this one (a failed rank takes its sub-groups down with it).</summary>
    public void Break(string reason)
    {
        Rendezvous[] children;
        lock (_gate)
        {
            _broken ??= reason;
            Monitor.PulseAll(_gate);
            children = [.. _children];
        }
        foreach (var child in children) child.Break(reason);
        Mailboxes.BreakAll(reason);
    }

    /// <summary>Registers a group split from this one, so that breaking this group breaks it too.</summary>
    public void Adopt(Rendezvous child)
    {
        string? broken;
        lock (_gate)
        {
            _children.Add(child);
            broken = _broken;
        }
        if (broken is not null) child.Break(broken);
    }

    void ThrowIfBroken()
    {
        if (_broken is not null) throw new XDitException(Native.XditStatus.Timeout, _broken);
    }
}
