using System.Collections.Concurrent;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>
/// Weights loaded once for every pipeline loaded with it (<see cref="PipelineLoader.Load(string, DeviceContext, DType, SharedWeights?)"/>):
/// in-process ranks on the CPU hold one copy of each read-only tensor instead of one per rank, since host memory
/// is one address space. Ranks may load concurrently: the first to ask for a tensor loads it, the others wait
/// for it and get a tensor of their own context over the same memory (so that everything computed from it
/// stays on their context), which keeps that memory alive until the last pipeline holding it is disposed.
/// Pipelines on a GPU load their own copy (each context's memory is ordered by its own stream). Dispose it once
/// the pipelines are loaded; they keep what they use.
/// </summary>
public sealed class SharedWeights : IDisposable
{
    readonly ConcurrentDictionary<(string Component, string Name, DType DType), Lazy<Tensor>> _tensors = new();

    /// <summary>Loads through <paramref name="source"/> (the weights of <paramref name="component"/>) at most
    /// once per tensor and dtype.</summary>
    internal ITensorSource Wrap(string component, ITensorSource source) => new Source(this, component, source);

    sealed class Source(SharedWeights owner, string component, ITensorSource source) : ITensorSource
    {
        public IReadOnlyCollection<string> Names => source.Names;

        public IReadOnlyList<long> Shape(string name) => source.Shape(name);

        public Tensor Load(string name, DeviceContext context, DType dtype)
        {
            if (context.Device.Kind != DeviceKind.Cpu) return source.Load(name, context, dtype);
            var first = owner._tensors.GetOrAdd((component, name, dtype),
                _ => new Lazy<Tensor>(() => source.Load(name, context, dtype).MoveToOuterScope(null), LazyThreadSafetyMode.ExecutionAndPublication)).Value;
            var share = first.Share();
            if (ReferenceEquals(first.Context, context)) return share;
            if (!share.IsContiguous)
            {
                share.Dispose();
                return source.Load(name, context, dtype); // a view can't be wrapped as plain memory: this rank's own copy
            }
            try
            {
                // This rank's tensor over the loading rank's memory; the share keeps that memory alive.
                return Tensor.WrapHost(context, share.DataAddress, share.DType, share.Shape.ToArray(), owner: share);
            }
            catch
            {
                share.Dispose();
                throw;
            }
        }
    }

    public void Dispose()
    {
        foreach (var tensor in _tensors.Values.Where(t => t.IsValueCreated)) tensor.Value.Dispose();
        _tensors.Clear();
    }
}
