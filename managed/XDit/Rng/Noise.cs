using XDit.Tensors;

namespace XDit.Rng;

/// <summary>
/// Seeded initial noise as tensors. The numbers are always drawn on the host by a
/// <see cref="TorchGenerator"/> and then copied to the context's device, so a seed gives the same latent
/// on every backend and for every rank count (each rank draws the whole tensor and keeps its part), and
/// the same one a diffusers pipeline gets from <c>torch.Generator('cpu')</c>.
/// </summary>
public static class Noise
{
    /// <summary>A new f32 tensor of standard normals: <c>torch.randn(shape, generator=generator)</c>.</summary>
    public static Tensor Randn(DeviceContext context, TorchGenerator generator, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(generator);
        var values = generator.Randn(shape);
        return Tensor.FromArray(context, values, shape);
    }

    /// <summary>Like <see cref="Randn(DeviceContext, TorchGenerator, long[])"/>, converted to
    /// <paramref name="dtype"/> after the f32 draw, as <c>torch.randn(..., dtype=float32).to(dtype)</c>
    /// would; the generator advances exactly as for an f32 draw.</summary>
    public static Tensor Randn(DeviceContext context, TorchGenerator generator, DType dtype, params long[] shape)
    {
        if (!dtype.IsFloatingPoint())
            throw new ArgumentException(
                $"randn {Shapes.ToString(shape)}: noise is drawn in f32 and converts to f16 or bf16, not to {dtype.Name()}",
                nameof(dtype));
        var noise = Randn(context, generator, shape);
        if (dtype == DType.F32) return noise;
        using (noise) return noise.To(dtype);
    }
}
