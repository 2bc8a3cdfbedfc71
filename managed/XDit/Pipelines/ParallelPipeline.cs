using System.Collections.Concurrent;
using XDit.Parallel;

namespace XDit.Pipelines;

/// <summary>
/// A pipeline resident on the in-process ranks of a <see cref="ParallelConfig"/>: one thread per rank,
/// each with its own context (on the CPU, its share of the cores; on a GPU, its own stream of the one
/// device every rank shares) and its own loaded pipeline — over one shared copy of the weights
/// (<see cref="SharedWeights"/>) — which stay loaded
/// between requests — what <see cref="Serving.XDitEngine"/> and <c>xdit serve</c> put behind their queue
/// for parallel generation. <see cref="Generate(GenerationRequest, IProgress{GenerationProgress}?, CancellationToken)"/>
/// hands the request to every rank, which runs its part (<see cref="ParallelGeneration"/>), and returns
/// the result of the whole mesh — equal to the single-rank run's. Cancellation is agreed at step
/// boundaries, and the ranks stay usable after it; any other failure of a rank breaks the world, and the
/// pipeline then refuses further requests with that failure (dispose it and load again).
/// </summary>
public sealed class ParallelPipeline : IPipeline
{
    sealed record Job(GenerationRequest Request, IProgress<GenerationProgress>? Progress, CancellationToken Cancellation);

    readonly ParallelGeneration.ModelFacts _model;
    readonly ParallelConfig _config;
    readonly BlockingCollection<Job>[] _jobs;
    readonly Thread[] _threads;
    readonly Rendezvous _world;
    readonly ParallelGeneration.RankPart?[] _parts;
    readonly Exception?[] _errors;
    readonly Barrier _done;
    readonly IPipeline?[] _pipelines;
    readonly DeviceContext?[] _contexts;
    string? _broken;
    int _disposed;

    ParallelPipeline(string folder, ParallelGeneration.ModelFacts model, ParallelConfig config, DType dtype, Device device, ContextOptions options,
        TimeSpan timeout)
    {
        _model = model;
        _config = config;
        var size = config.WorldSize;
        var (ranks, world) = InProcessWorld.Create(size, timeout);
        _world = world;
        _jobs = Enumerable.Range(0, size).Select(_ => new BlockingCollection<Job>()).ToArray();
        _parts = new ParallelGeneration.RankPart?[size];
        _errors = new Exception?[size];
        _pipelines = new IPipeline?[size];
        _contexts = new DeviceContext?[size];
        _done = new Barrier(size + 1);
        var meshes = new ProcessMesh?[size];
        // The ranks share one copy of the weights.
        var shared = new SharedWeights();
        // Loading is the first job of every rank: the mesh is collective, the weights per rank.
        _threads = Enumerable.Range(0, size).Select(rank => new Thread(() =>
        {
            try
            {
                meshes[rank] = ProcessMesh.Create(ranks[rank], config);
                _contexts[rank] = DeviceContext.Create(device, options);
                _pipelines[rank] = PipelineLoader.Load(folder, _contexts[rank]!, dtype, shared);
            }
            catch (Exception e)
            {
                _errors[rank] = e;
                world.Break($"rank {rank} failed: {e.Message}");
            }
            _done.SignalAndWait();
            if (_errors.All(e => e is null)) Serve(rank, meshes[rank]!);
            // What a rank thread made, it frees.
            _pipelines[rank]?.Dispose();
            _contexts[rank]?.Dispose();
            meshes[rank]?.Dispose();
        }) { IsBackground = true, Name = $"xdit-rank-{rank}" }).ToArray();
        foreach (var thread in _threads) thread.Start();
        _done.SignalAndWait();
        shared.Dispose(); // the pipelines hold what they use
        try
        {
            InProcessWorld.ThrowFirstFailure(_errors, world);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>A rank's loop: each job is this rank's part of one request; the barrier tells the caller
    /// that every rank is done with it.</summary>
    void Serve(int rank, ProcessMesh mesh)
    {
        foreach (var job in _jobs[rank].GetConsumingEnumerable())
        {
            try
            {
                _parts[rank] = ParallelGeneration.RunRank(_pipelines[rank]!, mesh, job.Request, _config,
                    rank == 0 ? job.Progress : null, job.Cancellation);
            }
            catch (OperationCanceledException e) when (e.CancellationToken == job.Cancellation)
            {
                _errors[rank] = e; // agreed by every rank at a step boundary: no rank waits in a collective
            }
            catch (Exception e)
            {
                _errors[rank] = e;
                _world.Break($"rank {rank} failed: {e.Message}");
            }
            _done.SignalAndWait();
        }
    }

    /// <summary>Checks <paramref name="config"/> against the model (read once, for every later request
    /// too), then starts the ranks and loads the pipeline on each.</summary>
    /// <param name="contextOptions">Every rank's context; the thread count becomes the rank's share of the cores.</param>
    /// <param name="device">Where every rank runs: the CPU (the default), or one CUDA device that all ranks
    /// share, each with its own stream; they exchange data by device-to-device copies.</param>
    public static ParallelPipeline Load(string folder, ParallelConfig config, DType dtype = DType.F32, ContextOptions? contextOptions = null,
        TimeSpan? timeout = null, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var model = ParallelGeneration.ModelFacts.Read(folder);
        ParallelGeneration.ValidateForModel(model, config);
        var options = (contextOptions ?? new ContextOptions()) with { NumThreads = Math.Max(1, Environment.ProcessorCount / config.WorldSize) };
        return new ParallelPipeline(folder, model, config, dtype, device ?? Device.Cpu, options, timeout ?? InProcessWorld.DefaultTimeout);
    }

    public ParallelConfig Config => _config;

    /// <summary>Rank 0's context.</summary>
    public DeviceContext Context => _contexts[0]!;

    /// <summary>Every rank's context, in rank order.</summary>
    internal IReadOnlyList<DeviceContext> RankContexts => _contexts.Select(c => c!).ToList();

    public int SizeMultiple => _pipelines[0]!.SizeMultiple;

    public int DefaultImageSize => _pipelines[0]!.DefaultImageSize;

    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (_broken is not null)
            throw new XDitException(Native.XditStatus.Unavailable, $"the parallel pipeline is broken since a rank failed ({_broken}); dispose it and load it again");
        ValidateRequest(request);
        Array.Clear(_parts);
        Array.Clear(_errors);
        var job = new Job(request, progress, cancellation);
        foreach (var queue in _jobs) queue.Add(job);
        _done.SignalAndWait();
        try
        {
            InProcessWorld.ThrowFirstFailure(_errors, _world);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            _broken = e.Message;
            throw;
        }
        return ParallelGeneration.Assemble(_parts.Select(p => p!).ToList(), request);
    }

    /// <summary>The mesh's checks and the model's, on the caller's thread: a request every rank would refuse
    /// is refused here, and the ranks stay usable (a rank that fails mid-request breaks the world).</summary>
    public void ValidateRequest(GenerationRequest request)
    {
        ParallelGeneration.Validate(_model, request, _config);
        _pipelines[0]!.ValidateRequest(request);
    }

    /// <summary>Not for a pipeline that is itself a whole mesh.</summary>
    public GenerationResult Generate(GenerationRequest request, ProcessMesh mesh, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default) =>
        throw new XDitException(Native.XditStatus.Unsupported, "a ParallelPipeline runs its own mesh; it cannot be one rank of another");

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        foreach (var queue in _jobs) queue.CompleteAdding();
        foreach (var thread in _threads) thread.Join();
        foreach (var queue in _jobs) queue.Dispose();
        _done.Dispose();
    }
}
