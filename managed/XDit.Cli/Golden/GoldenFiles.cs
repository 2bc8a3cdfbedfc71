using XDit.Weights;

namespace XDit.Cli.Golden;

/// <summary>The tensors of a golden safetensors file on the host, through the engine's validated reader.</summary>
internal sealed class GoldenFiles(DeviceContext context)
{
    public float[] F32(string file, string name)
    {
        using var checkpoint = Checkpoint.OpenFile(file);
        using var t = checkpoint.Load(name, context, DType.F32);
        return t.ToArray<float>();
    }

    public long[] I64(string file, string name)
    {
        using var checkpoint = Checkpoint.OpenFile(file);
        using var t = checkpoint.Load(name, context, DType.I64);
        return t.ToArray<long>();
    }

    public long[] Shape(string file, string name)
    {
        using var checkpoint = Checkpoint.OpenFile(file);
        return checkpoint.Shape(name).ToArray();
    }

    public bool Has(string file, string name)
    {
        using var checkpoint = Checkpoint.OpenFile(file);
        return checkpoint.Contains(name);
    }
}
