using XDit.Rng;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>The initial noise of a request, as diffusers draws it: <c>torch.randn</c> [batch, channels,
/// height, width] from a CPU generator seeded with the request's seed. A data-parallel part
/// (<see cref="GenerationRequest.NoiseBatch"/>) draws the whole batch and keeps its own rows, so that every
/// replica starts from the numbers of the single-rank run.</summary>
internal static class RequestNoise
{
    public static Tensor Draw(DeviceContext context, GenerationRequest request, DType dtype, long channels, long height, long width)
    {
        var batch = request.BatchSize;
        var drawn = Noise.Randn(context, new TorchGenerator(request.Seed), dtype, Math.Max(request.NoiseBatch, batch), channels, height, width);
        if (request.NoiseBatch == 0) return drawn;
        using (drawn) return drawn.Narrow(0, request.NoiseOffset, batch).Contiguous();
    }
}
