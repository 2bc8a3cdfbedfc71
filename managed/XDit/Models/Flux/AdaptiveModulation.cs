using XDit.Nn.Layers;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>The projection shared by Flux's adaptive norms: <c>linear(SiLU(temb))</c> chunked into
/// modulation vectors along the features, as diffusers' <c>emb.chunk(n, dim=1)</c> does.</summary>
internal static class AdaptiveModulation
{
    /// <summary>The <paramref name="count"/> vectors of <c>linear(activatedConditioning)</c>, each a
    /// [B, 1, C] view that broadcasts over the tokens of [B, S, C]. The views are the only owners of the
    /// projection; they belong to the caller (or the caller's scope).</summary>
    public static Tensor[] Vectors(Linear linear, Tensor activatedConditioning, int count)
    {
        using var projected = linear.Forward(activatedConditioning);
        using var rows = projected.View(projected.Size(0), count, projected.Size(-1) / count);
        return Enumerable.Range(0, count).Select(i => rows.Narrow(1, i, 1)).ToArray();
    }
}
