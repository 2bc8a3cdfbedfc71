using XDit.Tensors;

namespace XDit.Nn;

/// <summary>Named tensors a module tree loads from: a checkpoint on disk, or tensors built in memory.</summary>
public interface ITensorSource
{
    IReadOnlyCollection<string> Names { get; }

    /// <summary>The stored shape of <paramref name="name"/>.</summary>
    IReadOnlyList<long> Shape(string name);

    /// <summary>The tensor on <paramref name="context"/>, converted to <paramref name="dtype"/>.</summary>
    Tensor Load(string name, DeviceContext context, DType dtype);
}
