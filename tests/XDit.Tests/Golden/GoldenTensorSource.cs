using XDit.Nn;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>A golden weights file as a module tree's tensor source (test support: the values go
/// through the independent test reader, not the engine's own safetensors code).</summary>
internal sealed class GoldenTensorSource(GoldenTensors tensors) : ITensorSource
{
    public IReadOnlyCollection<string> Names => tensors.Names;

    public IReadOnlyList<long> Shape(string name) => tensors.Shape(name);

    public Tensor Load(string name, DeviceContext context, DType dtype)
    {
        using var f32 = Tensor.FromArray(context, tensors.Floats(name), tensors.Shape(name));
        return f32.To(dtype);
    }
}
