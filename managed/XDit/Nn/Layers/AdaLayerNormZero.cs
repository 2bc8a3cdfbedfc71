using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>
/// diffusers' <c>AdaLayerNormZero</c> as the MMDiT blocks use it — SD3's joint blocks and Flux's
/// double-stream blocks (<c>norm1</c>, <c>norm1_context</c>) — and <c>SD35AdaLayerNormZeroX</c> with
/// <paramref name="dualAttention"/>: one linear layer maps the block's conditioning to the modulation
/// rows of the stream, in diffusers' chunk order shift, scale, gate of the attention, then of the
/// feed-forward, then (dual attention only) of the second attention. The layer norm they modulate has
/// no parameters, so the block applies it fused with each shift and scale
/// (<see cref="Ops.Normalization.LayerNorm(Tensor, Tensor?, Tensor?, double, Tensor?, Tensor?)"/>).
/// </summary>
public sealed class AdaLayerNormZero : Module
{
    public const int ShiftMsa = 0, ScaleMsa = 1, GateMsa = 2, ShiftMlp = 3, ScaleMlp = 4, GateMlp = 5;
    public const int ShiftMsa2 = 6, ScaleMsa2 = 7, GateMsa2 = 8;

    /// <summary>diffusers' eps of the parameter-free norm these rows modulate.</summary>
    public const double Eps = 1e-6;

    public AdaLayerNormZero(long dim, bool dualAttention = false)
    {
        Rows = dualAttention ? 9 : 6;
        Linear = Child("linear", new Linear(dim, Rows * dim));
    }

    /// <summary>6, or 9 with the second attention's shift, scale and gate.</summary>
    public int Rows { get; }
    public Linear Linear { get; }

    /// <summary>SiLU(conditioning) [B, C] → the modulation [B, Rows, C]; row r as
    /// <c>Narrow(1, r, 1)</c> broadcasts over the tokens of [B, S, C].</summary>
    /// <param name="activatedConditioning">The model's conditioning after SiLU (computed once per step
    /// and shared by every block).</param>
    public Tensor Modulation(Tensor activatedConditioning)
    {
        using var flat = Linear.Forward(activatedConditioning);
        return flat.View(flat.Size(0), Rows, flat.Size(1) / Rows);
    }
}
