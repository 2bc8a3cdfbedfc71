using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Flux;

/// <summary>diffusers clips the residual streams of Flux's blocks to ±65504 when they run in f16, so that
/// an overflow saturates at f16's largest finite value instead of turning into infinities.</summary>
internal static class FluxHalfPrecision
{
    const double F16Max = 65504;

    /// <summary>x itself unless it is f16; then a clamped copy (in x's scope).</summary>
    public static Tensor ClampToF16Range(Tensor x) => x.DType == DType.F16 ? Elementwise.Clamp(x, -F16Max, F16Max) : x;
}
