using System.Collections.Concurrent;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>
/// Weights loaded once for every pipeline loaded with it (<see cref="PipelineLoader.Load(string, DeviceContext, DType, SharedWeights?)"/>):
/// in-process ranks on one device hold one copy of each read-only tensor instead of one per rank. Ranks may
/// load concurrently: the first to ask for a tensor loads it (on a GPU, and waits until it is written), the
/// others wait for it and get a tensor of their own context over the same memory — so that everything
/// computed from it stays on their context and stream — which keeps that memory alive until the last
/// pipeline holding it is disposed (on a GPU, after that rank's queued work). Ranks on another device load
/// their own copy. Dispose it once the pipelines are loaded; they keep what they use.
/// </summary>
public sealed class SharedWeights : IDisposable
{
    readonly ConcurrentDictionary<(string Component, string Name, DType DType, Device Device), Lazy<Tensor>> _tensors = new();

    /// <summary>Loads through <paramref name="source"/> (the weights of <paramref name="component"/>) at most
    /// once per tensor, dtype and device.</summary>
    internal ITensorSource Wrap(string component, ITensorSource source) => new Source(this, component, source);

    sealed class Source(SharedWeights owner, string component, ITensorSource source) : ITensorSource
    {
        public IReadOnlyCollection<string> Names => source.Names;

        public IReadOnlyList<long> Shape(string name) => source.Shape(name);

        public Tensor Load(string name, DeviceContext context, DType dtype)
        {
            var first = owner._tensors.GetOrAdd((component, name, dtype, context.Device), _ => new Lazy<Tensor>(() =>
            {
                var loaded = source.Load(name, context, dtype).MoveToOuterScope(null);
                // Other ranks' streams read it with no event to wait for: it must be complete first.
                if (context.Device.Kind != DeviceKind.Cpu) context.Synchronize();
                return loaded;
            }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;
            var share = first.Share();
            if (ReferenceEquals(first.Context, context)) return share;
            if (!share.IsContiguous)
            {
                share.Dispose();
                return source.Load(name, context, dtype); // a view can't be wrapped as plain memory: this rank's own copy
            }
            IDisposable keepAlive = context.Device.Kind == DeviceKind.Cpu ? share : new ReleasedAfterStream(context, share);
            try
            {
                // This rank's tensor over the loading rank's memory, which keepAlive holds.
                return Tensor.Wrap(context, share.DataAddress, share.DType, share.Shape.ToArray(), keepAlive);
            }
            catch
            {
                keepAlive.Dispose();
                throw;
            }
        }
    }

    /// <summary>Releases a share of another context's device memory once the work this rank queued on it has
    /// finished, so that the loading rank cannot reuse the memory under a kernel still reading it.</summary>
    sealed class ReleasedAfterStream(DeviceContext context, Tensor share) : IDisposable
    {
        public void Dispose()
        {
            try
            {
                if (!context.IsDisposed) context.Synchronize();
            }
            finally
            {
                share.Dispose();
            }
        }
    }

    public void Dispose()
    {
        foreach (var tensor in _tensors.Values.Where(t => t.IsValueCreated)) tensor.Value.Dispose();
        _tensors.Clear();
    }
}
