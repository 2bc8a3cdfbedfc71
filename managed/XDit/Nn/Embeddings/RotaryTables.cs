using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Embeddings;

/// <summary>The cos and sin tables of a rotary position embedding, row-major [Positions, Dim] each.
/// Attention rotates each pair of q/k channels (as given by the <see cref="RotaryPairing"/>) by the
/// angle whose cosine and sine sit at those channels.</summary>
public sealed record RotaryTables
{
    public RotaryTables(float[] cos, float[] sin, int positions, int dim)
    {
        ArgumentNullException.ThrowIfNull(cos);
        ArgumentNullException.ThrowIfNull(sin);
        if (positions < 0) throw new ArgumentOutOfRangeException(nameof(positions), positions, "must not be negative");
        if (dim < 0) throw new ArgumentOutOfRangeException(nameof(dim), dim, "must not be negative");
        if (cos.Length != (long)positions * dim || sin.Length != cos.Length)
            throw new ArgumentException(
                $"cos ({cos.Length} elements) and sin ({sin.Length} elements) must both hold [{positions}, {dim}]");
        Cos = cos;
        Sin = sin;
        Positions = positions;
        Dim = dim;
    }

    public float[] Cos { get; }
    public float[] Sin { get; }
    public int Positions { get; }
    public int Dim { get; }

    /// <summary>Both tables as f32 tensors [Positions, Dim] on <paramref name="context"/> (for
    /// <see cref="Rotary.Apply(Tensor, Tensor, Tensor, RotaryPairing)"/> on [B, S, H, D], unsqueeze them to
    /// [Positions, 1, Dim]).</summary>
    public (Tensor Cos, Tensor Sin) ToTensors(DeviceContext context)
    {
        var cos = Tensor.FromArray(context, Cos, Positions, Dim);
        try
        {
            return (cos, Tensor.FromArray(context, Sin, Positions, Dim));
        }
        catch
        {
            cos.Dispose();
            throw;
        }
    }
}
