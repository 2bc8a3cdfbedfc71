using XDit.Models.Vae;
using XDit.Nn;
using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>
/// Loads the components of a diffusers folder onto one context and keeps track of them, so that a
/// pipeline whose loading fails halfway frees what it had already loaded (<see cref="Abandon"/>). With
/// <paramref name="shared"/>, each weight is loaded once for every pipeline loaded with it.
/// </summary>
internal sealed class ComponentLoader(DiffusersFolder folder, DeviceContext context, SharedWeights? shared = null)
{
    readonly List<IDisposable> _loaded = new();

    public DiffusersFolder Folder => folder;

    /// <summary>Tracks <paramref name="item"/> until loading succeeds.</summary>
    public T Track<T>(T item) where T : IDisposable
    {
        _loaded.Add(item);
        return item;
    }

    /// <summary>A module tree with its weights from <paramref name="component"/> (diffusers naming).</summary>
    public T Module<T>(string component, T module, DType dtype) where T : Module
    {
        Track(module);
        using var weights = folder.OpenWeights(component);
        WeightLoader.Load(module, Source(component, weights), context, dtype, sourceName: $"{component} checkpoint");
        return module;
    }

    /// <summary>A module whose own loader handles checkpoint quirks (tied or skipped tensors).</summary>
    public T Module<T>(string component, T module, Action<T, ITensorSource> load) where T : Module
    {
        Track(module);
        using var weights = folder.OpenWeights(component);
        load(module, Source(component, weights));
        return module;
    }

    ITensorSource Source(string component, ITensorSource weights) => shared?.Wrap(component, weights) ?? weights;

    /// <summary>The VAE, always in f32 (decoding in half precision is what <c>force_upcast</c> prevents).</summary>
    public AutoencoderKL Vae() =>
        Module("vae", new AutoencoderKL(AutoencoderKLConfig.FromJson(folder.Config("vae").Root)), DType.F32);

    /// <summary>The scheduler made from <c>scheduler/scheduler_config.json</c> by <paramref name="fromConfig"/>;
    /// a value the scheduler refuses becomes an <see cref="XDitException"/> naming the file.</summary>
    public T Scheduler<T>(Func<System.Text.Json.JsonElement, T> fromConfig) where T : IDisposable
    {
        var config = folder.Config("scheduler");
        try
        {
            return Track(fromConfig(config.Root));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new XDitException(e is NotSupportedException ? Native.XditStatus.Unsupported : Native.XditStatus.InvalidArgument,
                $"{config.Path}: {e.Message}");
        }
    }

    /// <summary>Frees everything loaded so far (loading failed).</summary>
    public void Abandon()
    {
        foreach (var item in _loaded) item.Dispose();
        _loaded.Clear();
    }
}
