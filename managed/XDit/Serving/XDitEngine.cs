using System.Threading.Channels;
using XDit.Pipelines;

namespace XDit.Serving;

/// <summary>The queue is full: the caller should retry later (HTTP 503).</summary>
public sealed class EngineBusyException(int capacity)
    : Exception($"the engine's queue of {capacity} requests is full; retry later")
{
    public int Capacity { get; } = capacity;
}

/// <summary>
/// A loaded pipeline behind a bounded queue, for .NET hosts: <see cref="GenerateAsync"/> may be called
/// from any number of threads; requests run one at a time, in order, on the engine's own worker thread
/// (which owns the pipeline's context). Cancellation removes a waiting request or stops a running one
/// between denoising steps, freeing what it held. <see cref="Dispose"/> finishes the running request,
/// fails the waiting ones, and frees every weight the pipeline holds.
/// </summary>
public sealed class XDitEngine : IDisposable
{
    sealed record Job(GenerationRequest Request, IProgress<GenerationProgress>? Progress, CancellationToken Cancellation,
        TaskCompletionSource<GenerationResult> Completion);

    readonly IPipeline _pipeline;
    readonly Channel<Job> _queue;
    readonly Thread _worker;
    readonly int _capacity;
    int _queued;
    int _disposed;

    /// <param name="pipeline">The pipeline the engine takes ownership of.</param>
    /// <param name="queueCapacity">Requests that may wait behind the running one.</param>
    public XDitEngine(IPipeline pipeline, int queueCapacity = 16)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(queueCapacity, 1);
        _pipeline = pipeline;
        _capacity = queueCapacity;
        _queue = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleReader = true });
        _worker = new Thread(Work) { IsBackground = true, Name = "xdit-engine" };
        _worker.Start();
    }

    public IPipeline Pipeline => _pipeline;

    /// <summary>Requests waiting or running.</summary>
    public int QueueDepth => Volatile.Read(ref _queued);

    public int QueueCapacity => _capacity;

    /// <summary>Queues <paramref name="request"/>; throws <see cref="EngineBusyException"/> when the queue is
    /// full and <see cref="ObjectDisposedException"/> after <see cref="Dispose"/>.</summary>
    public Task<GenerationResult> GenerateAsync(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Increment(ref _queued) > _capacity + 1)
        {
            Interlocked.Decrement(ref _queued);
            throw new EngineBusyException(_capacity);
        }
        var job = new Job(request, progress, cancellation, new TaskCompletionSource<GenerationResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (!_queue.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref _queued);
            throw new ObjectDisposedException(nameof(XDitEngine));
        }
        return job.Completion.Task;
    }

    void Work()
    {
        var reader = _queue.Reader;
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            while (reader.TryRead(out var job))
            {
                var outcome = Run(job);
                // The slot is released before the caller can observe the outcome, so a caller that awaits
                // one request and immediately queues the next never sees its own finished request as queued.
                Interlocked.Decrement(ref _queued);
                outcome();
            }
        }
    }

    /// <summary>Runs one job and returns how to complete its task (not yet applied).</summary>
    Action Run(Job job)
    {
        var completion = job.Completion;
        try
        {
            if (Volatile.Read(ref _disposed) != 0) return () => completion.TrySetException(new ObjectDisposedException(nameof(XDitEngine)));
            if (job.Cancellation.IsCancellationRequested) return () => completion.TrySetCanceled(job.Cancellation);
            var result = _pipeline.Generate(job.Request, job.Progress, job.Cancellation);
            return () => completion.TrySetResult(result);
        }
        catch (OperationCanceledException) when (job.Cancellation.IsCancellationRequested)
        {
            return () => completion.TrySetCanceled(job.Cancellation);
        }
        catch (Exception e)
        {
            return () => completion.TrySetException(e);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.Complete();
        _worker.Join();
        _pipeline.Dispose();
    }
}
