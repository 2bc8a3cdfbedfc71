using XDit.Tensors;

namespace XDit.Nn;

/// <summary>A named weight of a module with the shape the architecture expects; its tensor arrives
/// when the module tree is loaded (<see cref="WeightLoader"/>).</summary>
public sealed class Parameter : IDisposable
{
    Tensor? _value;

    internal Parameter(string name, long[] shape)
    {
        Name = name;
        Shape = shape;
    }

    /// <summary>The name within its module (the last component of the checkpoint name).</summary>
    public string Name { get; }

    public IReadOnlyList<long> Shape { get; }

    public bool IsLoaded => _value is not null;

    public Tensor Value => _value ?? throw new InvalidOperationException($"parameter '{Name}' has not been loaded");

    internal void Assign(Tensor value)
    {
        _value?.Dispose();
        _value = value;
    }

    public void Dispose()
    {
        _value?.Dispose();
        _value = null;
    }
}
