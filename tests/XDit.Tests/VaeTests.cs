using System.Text.Json;
using XDit.Models.Vae;
using XDit.Nn;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>AutoencoderKL decode and encode against diffusers' golden outputs (SD/PixArt style with quant
/// convs, and the SD3/Flux style without, 16 channels).</summary>
[TestFixture]
public class VaeTests
{
    /// <summary>A golden case's VAE (diffusers' tiny one) with its weights, in f32 on <paramref name="context"/>.</summary>
    internal static AutoencoderKL LoadGolden(string name, DeviceContext context)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(json.RootElement));
        try
        {
            WeightLoader.Load(vae, new GoldenTensorSource(GoldenTensors.Load(Path.Combine(folder, "diffusion_pytorch_model.safetensors"))),
                context, DType.F32);
            return vae;
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    [TestCase("vae")]
    [TestCase("vae_flux")]
    public void DecodeAndEncodeMatchDiffusers(string name)
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(name, context);
        var folder = GoldenTensors.CaseFolder(name);
        var inputs = GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors"));
        var outputs = GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors"));
        using var scope = new TensorScope();
        var latents = Tensor.FromArray(context, inputs.F32("latents"), inputs.Shape("latents"));
        var decoded = vae.Decode(latents);
        Assert.That(decoded.Shape.ToArray(), Is.EqualTo(outputs.Shape("decoded")));
        Assert.That(Reference.RelativeL2(decoded.ToArray<float>(), outputs.F32("decoded")), Is.LessThan(1e-5), "decoded");

        if (!inputs.Names.Contains("image")) return;
        var image = Tensor.FromArray(context, inputs.F32("image"), inputs.Shape("image"));
        var (mean, logVariance) = vae.Encode(image);
        Assert.That(Reference.RelativeL2(mean.ToArray<float>(), outputs.F32("posterior_mean")), Is.LessThan(1e-5), "posterior mean");
        Assert.That(Reference.RelativeL2(logVariance.ToArray<float>(), outputs.F32("posterior_logvar")), Is.LessThan(1e-5), "posterior log-variance");
    }

    [Test]
    public void DecodeScaledAppliesScalingAndShift()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden("vae_flux", context);
        using var scope = new TensorScope();
        var (latents, _) = Data.Random(context, 1, 1, 1, 16, 4, 4);
        var manual = vae.Decode(Elementwise.Affine(latents, 1 / vae.Config.ScalingFactor, vae.Config.ShiftFactor!.Value));
        Assert.That(vae.DecodeScaled(latents).ToArray<float>(), Is.EqualTo(manual.ToArray<float>()));
    }

    [Test]
    public void NonFiniteLatentsAreAnErrorNotAnImage()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden("vae", context);
        using var latents = Tensor.Full(context, DType.F32, double.NaN, 1, 4, 4, 4);
        var error = Assert.Throws<XDitException>(() => vae.Decode(latents).Dispose())!;
        Assert.That(error.Message, Does.Contain("non-finite"));
    }
}
