using XDit.Native;

namespace XDit;

/// <summary>
/// A sequence of a context's work captured once (<see cref="DeviceContext.Capture{T}"/>) and launched as
/// often as needed: on CUDA a CUDA graph, which replays hundreds of kernels with one launch and no host
/// work per op; on the CPU the recorded op calls, with the same semantics, so that the CPU tests check
/// what CUDA runs.
/// </summary>
/// <remarks>
/// <para>Nothing runs during the capture. Ops are checked and recorded; tensors allocated meanwhile
/// belong to the graph's memory (every launch writes them again, so their memory stays reserved for the
/// graph until it is disposed, even after the tensors are); host data written into tensors (uploads such
/// as <see cref="Tensors.Tensor.FromArray{T}"/>) is copied into the graph and written again at every
/// launch. Reading tensors back, synchronising, timing marks, copies between contexts and collectives are
/// refused while capturing.</para>
/// <para>A launch computes on the contents memory has at that point of the context's work: values that
/// change between launches go into tensors allocated before the capture, written before each launch.
/// Everything the captured work reads must stay alive, unchanged unless meant to, while the graph is used.</para>
/// </remarks>
public sealed class DeviceGraph : IDisposable
{
    readonly GraphHandle _handle;

    internal DeviceGraph(GraphHandle handle) => _handle = handle;

    /// <summary>Kernels, copies and library calls in the graph.</summary>
    public long NodeCount
    {
        get
        {
            NativeStatus.Check(NativeMethods.xdit_graph_node_count(_handle, out var count));
            return count;
        }
    }

    /// <summary>Issues the captured work again, in order, on the context's stream.</summary>
    public void Launch() => NativeStatus.Check(NativeMethods.xdit_graph_launch(_handle));

    /// <summary>Waits for the graph's launches, then returns its memory to the context's allocator.</summary>
    public void Dispose() => _handle.Dispose();
}
