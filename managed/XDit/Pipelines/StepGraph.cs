using XDit.Native;
using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>
/// Runs the model call of each denoising step, eagerly or — with <see cref="GenerationRequest.UseGraph"/>
/// (<c>--use_cuda_graph</c>) — as a captured graph (<see cref="DeviceGraph"/>): the first call runs
/// eagerly and warms up (library handles, kernel attributes, the allocator's cache), the second is
/// captured and launched, and every later one writes its latent input and timesteps into the graph's input
/// tensors and launches the graph again, with no host work per op. The result is the same, to the bit:
/// the same kernels run on the same inputs.
/// </summary>
/// <remarks>The model call must read nothing that changes between steps except the two inputs it is
/// given, and must not communicate with other ranks (sequence parallelism and PipeFusion exchange data
/// inside the step, so they run eagerly; <see cref="Create"/> refuses the combination). The scheduler's
/// update stays outside the graph: a handful of pointwise ops whose coefficients change every step.</remarks>
public sealed class StepGraph : IDisposable
{
    readonly DeviceContext _context;
    readonly bool _capture;
    int _calls;
    DeviceGraph? _graph;
    Tensor? _input, _timesteps, _output;

    StepGraph(DeviceContext context, bool capture)
    {
        _context = context;
        _capture = capture;
    }

    /// <summary>The runner of one generation's steps on <paramref name="context"/>: captured when the request
    /// asks for it, which a mesh with sequence parallelism or PipeFusion refuses.</summary>
    public static StepGraph Create(DeviceContext context, GenerationRequest request, ProcessMesh? mesh)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        if (request.UseGraph) CheckParallelism(mesh?.SequenceParallel is not null, mesh?.Pipeline is not null);
        return new StepGraph(context, request.UseGraph);
    }

    /// <summary>Refuses a captured step on a mesh whose ranks exchange data inside the step.</summary>
    public static void CheckParallelism(bool sequenceParallel, bool pipeFusion)
    {
        if (ParallelismProblem(sequenceParallel, pipeFusion) is { } problem) throw new XDitException(XditStatus.Unsupported, problem);
    }

    /// <summary>Why a mesh with these methods cannot capture its steps, or null when it can.</summary>
    public static string? ParallelismProblem(bool sequenceParallel, bool pipeFusion) => sequenceParallel || pipeFusion
        ? $"--use_cuda_graph captures one rank's denoising step, and {(pipeFusion ? "PipeFusion" : "sequence parallelism")} exchanges " +
          "data between ranks inside the step; use it with data and CFG parallelism, or run this mesh without it"
        : null;

    /// <summary>Kernels, copies and library calls of the captured step; 0 before the capture, or when not capturing.</summary>
    public long NodeCount => _graph?.NodeCount ?? 0;

    /// <summary>The model's output for <paramref name="input"/> at <paramref name="timesteps"/> (one per sample),
    /// as a new tensor the caller owns.</summary>
    /// <param name="model">The step's model call: the latent input and the timesteps (f32 [B], on the
    /// context) to the prediction. The same function every step.</param>
    public Tensor Run(Tensor input, ReadOnlySpan<float> timesteps, Func<Tensor, Tensor, Tensor> model)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(model);
        if (!_capture || _calls++ == 0)
        {
            using var values = Tensor.FromSpan(_context, timesteps, timesteps.Length);
            return model(input, values);
        }
        if (_graph is null) CaptureWith(input, timesteps, model);
        else
        {
            if (!Shapes.Equal(input.Shape, _input!.Shape) || input.DType != _input.DType || timesteps.Length != _timesteps!.Size(0))
                throw new InvalidOperationException(
                    $"the captured step takes a {_input.DType.Name()} {_input.ShapeString} input and {_timesteps!.Size(0)} timesteps; " +
                    $"got {input.DType.Name()} {input.ShapeString} and {timesteps.Length}");
            Elementwise.Copy(input, _input);
            _timesteps.CopyFrom(timesteps);
        }
        _graph!.Launch();
        return _output!.Clone();
    }

    void CaptureWith(Tensor input, ReadOnlySpan<float> timesteps, Func<Tensor, Tensor, Tensor> model)
    {
        // The graph's inputs live outside it, allocated before the capture; its output and everything the
        // model allocates while captured belong to the graph.
        _input = input.Clone().MoveToOuterScope(null);
        _timesteps = Tensor.FromSpan(_context, timesteps, timesteps.Length).MoveToOuterScope(null);
        using var scope = new TensorScope();
        var (graph, output) = _context.Capture(() => model(_input, _timesteps));
        _graph = graph;
        _output = output.MoveToOuterScope(null);
    }

    /// <summary>Releases the graph and its memory (after its launches finish).</summary>
    public void Dispose()
    {
        _graph?.Dispose();
        _output?.Dispose();
        _input?.Dispose();
        _timesteps?.Dispose();
        _graph = null;
    }
}
