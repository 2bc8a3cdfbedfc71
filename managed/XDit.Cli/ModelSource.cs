using System.Diagnostics;
using XDit.Parallel;
using XDit.Pipelines;

namespace XDit.Cli;

/// <summary>
/// Where a command's model comes from: a diffusers folder (<c>--model DIR</c>), or a named architecture
/// with random weights made from <c>--seed</c> (<c>--arch NAME --random_weights</c>), written to
/// <c>--save_model DIR</c> or a temporary folder and loaded back through the same loader; plus the
/// context (<c>--device</c>) and dtype (<c>--dtype</c>) it runs in.
/// </summary>
public sealed class ModelSource
{
    string? _model, _arch, _saveModel;
    ulong _seed;
    Device _device;
    DType _dtype;

    public static ModelSource Parse(CommandLine options)
    {
        var source = new ModelSource
        {
            _model = options.String("model"),
            _arch = options.String("arch"),
            _saveModel = options.String("save_model"),
            _seed = (ulong)options.Int("seed", 42, min: 0),
            _device = ParseDevice(options.String("device", "cpu")!),
        };
        var randomWeights = options.Flag("random_weights");
        source._dtype = ParseDType(options.String("dtype", source._device.Kind == DeviceKind.Cpu ? "f32" : "bf16")!);
        if (source._model is not null && (source._arch is not null || randomWeights))
            throw new UsageException("give either --model DIR or --arch NAME --random_weights, not both");
        if (source._model is null && source._arch is null)
            throw new UsageException("no model: give --model DIR (a diffusers folder) or --arch tiny-pixart --random_weights");
        if (source._arch is not null && !randomWeights)
            throw new UsageException($"--arch {source._arch} builds random weights: add --random_weights");
        return source;
    }

    public DType DType => _dtype;

    public Device Device => _device;

    /// <summary>An architecture's random weights are written to <c>--save_model DIR</c> to be kept.</summary>
    public bool SavesModel => _saveModel is not null && _arch is not null;

    /// <summary>The model's folder (written first for an architecture with random weights), the request
    /// defaults of its architecture, and the temporary folder to delete afterwards, if any.</summary>
    public (string Folder, GenerationRequest Defaults, string Name, string? Temporary) PrepareFolder(TextWriter log)
    {
        // A folder's defaults are the pipeline's own (height 0 = the pipeline's default size).
        if (_model is not null)
            return (_model, new GenerationRequest { Height = 0, Width = 0 }, Path.GetFileName(Path.TrimEndingDirectorySeparator(_model)), null);
        if (!Architectures.Names.Contains(_arch!))
            throw new UsageException($"unknown --arch '{_arch}' (known: {string.Join(", ", Architectures.Names)})");
        string? temporary = null;
        var folder = _saveModel ?? (temporary = Directory.CreateTempSubdirectory("xdit-" + _arch).FullName);
        var watch = Stopwatch.StartNew();
        try
        {
            var defaults = Architectures.WriteRandomFolder(_arch!, folder, _seed, _dtype);
            log.WriteLine($"wrote {_arch} with random weights (seed {_seed}) to {folder} in {watch.Elapsed.TotalSeconds:F1} s");
            return (folder, defaults, _arch!, temporary);
        }
        catch
        {
            if (temporary is not null) Directory.Delete(temporary, recursive: true);
            throw;
        }
    }

    /// <summary>Writes the architecture's folder if needed and loads the pipeline: on a new context, or
    /// resident on the in-process ranks of <paramref name="mesh"/> when it has more than one.</summary>
    public LoadedModel Load(TextWriter log, ParallelConfig? mesh = null)
    {
        var (folder, defaults, name, temporary) = PrepareFolder(log);
        try
        {
            return LoadFolder(folder, log, mesh, defaults, name, temporary);
        }
        catch
        {
            if (temporary is not null) Directory.Delete(temporary, recursive: true);
            throw;
        }
    }

    /// <summary>Loads the pipeline of a folder already prepared (<see cref="PrepareFolder"/>), as
    /// <see cref="Load"/> does; disposing the result deletes <paramref name="temporary"/>, if given.</summary>
    public LoadedModel LoadFolder(string folder, TextWriter log, ParallelConfig? mesh = null, GenerationRequest? defaults = null,
        string? name = null, string? temporary = null)
    {
        var load = Stopwatch.StartNew();
        if (mesh is { WorldSize: > 1 })
        {
            ParallelPipeline ranks;
            try
            {
                ranks = ParallelPipeline.Load(folder, mesh, _dtype, device: _device);
            }
            catch (XDitException e) when (e.Status == Native.XditStatus.InvalidArgument)
            {
                throw new UsageException(e.Message);
            }
            log.WriteLine($"loaded {folder} on {mesh.WorldSize} in-process ranks on {_device} ({mesh}) in {load.Elapsed.TotalSeconds:F1} s");
            return new LoadedModel(ranks, null, defaults ?? new GenerationRequest(), name ?? Path.GetFileName(folder), temporary);
        }
        var context = DeviceContext.Create(_device);
        try
        {
            var pipeline = PipelineLoader.Load(folder, context, _dtype);
            log.WriteLine($"loaded {folder} on {context} in {load.Elapsed.TotalSeconds:F1} s");
            return new LoadedModel(pipeline, context, defaults ?? new GenerationRequest(), name ?? Path.GetFileName(folder), temporary);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    internal static Device ParseDevice(string text)
    {
        try
        {
            return Device.Parse(text);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--device: {e.Message}");
        }
    }

    internal static DType ParseDType(string text) => text.ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => DType.F32,
        "bf16" or "bfloat16" => DType.BF16,
        "f16" or "fp16" or "float16" => DType.F16,
        _ => throw new UsageException($"--dtype must be f32, bf16 or f16, got '{text}'"),
    };
}

/// <summary>A loaded pipeline with its context (null when the pipeline owns its contexts, as a
/// <see cref="ParallelPipeline"/> does), the request defaults of its architecture, and the temporary folder
/// its random weights were written to (deleted on dispose).</summary>
public sealed class LoadedModel(IPipeline pipeline, DeviceContext? context, GenerationRequest defaults, string name, string? temporary)
    : IDisposable
{
    readonly DeviceContext _context = context ?? pipeline.Context;

    public IPipeline Pipeline { get; private set; } = pipeline;
    public DeviceContext Context => _context;
    public GenerationRequest Defaults => defaults;
    public string Name => name;

    /// <summary>Hands the pipeline to another owner (an engine), which disposes it.</summary>
    public IPipeline Release()
    {
        var p = Pipeline;
        Pipeline = null!;
        return p;
    }

    public void Dispose()
    {
        Pipeline?.Dispose();
        context?.Dispose();
        if (temporary is not null && Directory.Exists(temporary)) Directory.Delete(temporary, recursive: true);
    }
}
