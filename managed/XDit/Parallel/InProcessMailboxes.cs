using XDit.Ops;
using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The point-to-point messages of one group of in-process ranks: a FIFO channel per ordered pair of
/// ranks. A send posts a shared handle on the sender's tensor (no copy) under the channel's next number;
/// the receive with the same number copies it on the receiving rank's own thread (a context is used by
/// one thread at a time) and then releases the sender. So a send costs one copy, made when the receiver
/// asks for it, and the sender is free to compute meanwhile.
/// </summary>
internal sealed class Mailboxes(int size)
{
    readonly Channel?[,] _channels = new Channel?[size, size];
    string? _broken;

    public Channel Between(int from, int to)
    {
        Channel channel;
        string? broken;
        lock (_channels)
        {
            if (_channels[from, to] is { } existing) return existing;
            channel = _channels[from, to] = new Channel();
            broken = _broken;
        }
        if (broken is not null) channel.Break(broken);
        return channel;
    }

    /// <summary>Breaks every channel made so far and every channel made later.</summary>
    public void BreakAll(string reason)
    {
        List<Channel> made;
        lock (_channels)
        {
            _broken ??= reason;
            made = _channels.Cast<Channel?>().OfType<Channel>().ToList();
        }
        foreach (var channel in made) channel.Break(reason);
    }
}

/// <summary>One direction between two ranks: messages numbered in posting order on each side.</summary>
internal sealed class Channel
{
    public sealed class Message(Tensor data, string description)
    {
        public Tensor Data { get; } = data;
        public string Description { get; } = description;
        public bool Delivered { get; set; }
        public string? Failure { get; set; }
    }

    readonly object _gate = new();
    readonly Dictionary<long, Message> _posted = new();
    long _nextSend, _nextReceive;
    string? _broken;

    public Message Post(Tensor data, string description)
    {
        lock (_gate)
        {
            ThrowIfBroken();
            var message = new Message(data, description);
            _posted[_nextSend++] = message;
            Monitor.PulseAll(_gate);
            return message;
        }
    }

    public long ReserveReceive()
    {
        lock (_gate) return _nextReceive++;
    }

    /// <summary>The message numbered <paramref name="number"/>, once posted; null when the deadline passes.</summary>
    public Message? Take(long number, DateTime deadline)
    {
        lock (_gate)
        {
            while (true)
            {
                ThrowIfBroken();
                if (_posted.Remove(number, out var message)) return message;
                var remaining = deadline - DateTime.UtcNow;
                if (remaining <= TimeSpan.Zero) return null;
                Monitor.Wait(_gate, remaining);
            }
        }
    }

    public void Complete(Message message, string? failure)
    {
        lock (_gate)
        {
            message.Delivered = true;
            message.Failure = failure;
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Waits until the receiver has copied <paramref name="message"/>; false when the deadline passes.</summary>
    public bool AwaitDelivery(Message message, DateTime deadline)
    {
        lock (_gate)
        {
            while (!message.Delivered)
            {
                ThrowIfBroken();
                var remaining = deadline - DateTime.UtcNow;
                if (remaining <= TimeSpan.Zero) return false;
                Monitor.Wait(_gate, remaining);
            }
        }
        if (message.Failure is not null) throw new XDitException(Native.XditStatus.InvalidArgument, message.Failure);
        return true;
    }

    public void Break(string reason)
    {
        lock (_gate)
        {
            _broken ??= reason;
            Monitor.PulseAll(_gate);
        }
    }

    void ThrowIfBroken()
    {
        if (_broken is not null) throw new XDitException(Native.XditStatus.Timeout, _broken);
    }
}

/// <summary>An in-process send: done when the receiver has copied the message.</summary>
internal sealed class InProcessSend(Channel channel, Channel.Message message, TimeSpan timeout, Action<string> breakGroup) : ICommRequest
{
    bool _done;

    public void Wait()
    {
        if (_done) return;
        if (!channel.AwaitDelivery(message, DateTime.UtcNow + timeout))
        {
            var reason = $"{message.Description} was not received within {timeout.TotalSeconds:F0} s";
            breakGroup(reason);
            throw new XDitException(Native.XditStatus.Timeout, reason);
        }
        _done = true;
    }

    public void Dispose()
    {
        if (_done || message.Delivered) message.Data.Dispose();
        else AbandonedTransfers.Hold(message.Data);  // the receiver may still copy from it
    }
}

/// <summary>An in-process receive: the copy happens in <see cref="Wait"/>, on the receiving rank's thread.</summary>
internal sealed class InProcessReceive(Channel channel, long number, Tensor target, string description, TimeSpan timeout,
    Action<string> breakGroup) : ICommRequest
{
    bool _done;

    public void Wait()
    {
        if (_done) return;
        var message = channel.Take(number, DateTime.UtcNow + timeout);
        if (message is null)
        {
            var reason = $"{description} timed out after {timeout.TotalSeconds:F0} s: nothing was sent";
            breakGroup(reason);
            throw new XDitException(Native.XditStatus.Timeout, reason);
        }
        if (message.Data.DType != target.DType || !Shapes.Equal(message.Data.Shape, target.Shape))
        {
            var failure = $"{description} ({target.DType.Name()} {target.ShapeString}) met {message.Description}: the shapes differ";
            channel.Complete(message, failure);
            throw new XDitException(Native.XditStatus.InvalidArgument, failure);
        }
        try
        {
            Elementwise.Copy(message.Data, target);
        }
        catch (Exception e)
        {
            channel.Complete(message, $"{description} failed: {e.Message}");
            throw;
        }
        channel.Complete(message, null);
        _done = true;
    }

    public void Dispose()
    {
    }
}
