using XDit.Ops;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// The tensor arithmetic of the scheduler steps: linear combinations of latents with host-computed
/// coefficients, in float32. Every result is a new tensor in the caller's <see cref="TensorScope"/>
/// (the steps run inside one), so a partial failure leaves nothing behind.
/// </summary>
internal static class LatentMath
{
    /// <summary><paramref name="x"/> in float32: <paramref name="x"/> itself when it already is (not a
    /// new tensor, so not the caller's to dispose), else a converted copy in the current scope.</summary>
    public static Tensor InFloat32(Tensor x) => x.DType == DType.F32 ? x : x.To(DType.F32);

    /// <summary>Σ cᵢ·xᵢ, accumulated term by term in float32.</summary>
    public static Tensor Combine(params ReadOnlySpan<(double Coefficient, Tensor Term)> terms)
    {
        var result = Elementwise.Affine(terms[0].Term, terms[0].Coefficient);
        foreach (var (coefficient, term) in terms[1..])
        {
            using var scaled = Elementwise.Affine(term, coefficient);
            Elementwise.Add(result, scaled, result);
        }
        return result;
    }

    /// <summary>The float32 <paramref name="result"/> handed out of the step's scope in the dtype of
    /// <paramref name="sample"/>.</summary>
    public static Tensor Finish(Tensor result, Tensor sample) =>
        (sample.DType == DType.F32 ? result : result.To(sample.DType)).MoveToOuterScope();
}
