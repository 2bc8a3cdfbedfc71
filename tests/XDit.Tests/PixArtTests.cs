using System.Text.Json;
using XDit.Models.PixArt;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>PixArt-α and PixArt-Σ transformers against the golden outputs of diffusers, and the loader's
/// report of mismatched checkpoints.</summary>
[TestFixture]
public class PixArtTests
{
    internal static PixArtTransformer2DModel LoadGolden(string name, DeviceContext context)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var model = new PixArtTransformer2DModel(PixArtConfig.FromJson(json.RootElement));
        try
        {
            WeightLoader.Load(model, new GoldenTensorSource(GoldenTensors.Load(Path.Combine(folder, "diffusion_pytorch_model.safetensors"))),
                context, DType.F32);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    [TestCase("pixart_alpha")]
    [TestCase("pixart_sigma")]
    public void MatchesDiffusers(string name)
    {
        using var context = Contexts.Cpu();
        using var model = LoadGolden(name, context);
        var folder = GoldenTensors.CaseFolder(name);
        var inputs = GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors"));
        var outputs = GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors"));
        using var scope = new TensorScope();
        var latents = Tensor.FromArray(context, inputs.F32("hidden_states"), inputs.Shape("hidden_states"));
        var caption = Tensor.FromArray(context, inputs.F32("encoder_hidden_states"), inputs.Shape("encoder_hidden_states"));
        var mask = Tensor.FromArray(context, inputs.F32("encoder_attention_mask").Select(m => m > 0.5f).ToArray(), inputs.Shape("encoder_attention_mask"));
        var hasSizes = inputs.Names.Contains("resolution");
        var sample = model.Forward(latents, inputs.F32("timestep"), caption, mask,
            hasSizes ? inputs.F32("resolution") : default, hasSizes ? inputs.F32("aspect_ratio") : default);
        Assert.That(sample.Shape.ToArray(), Is.EqualTo(outputs.Shape("sample")));
        var error = Reference.RelativeL2(sample.ToArray<float>(), outputs.F32("sample"));
        Assert.That(error, Is.LessThan(1e-5), $"{name}: relative L2 {error:E2}");
    }

    [Test]
    public void MismatchedCheckpointsAreReportedTogether()
    {
        using var context = Contexts.Cpu();
        var folder = GoldenTensors.CaseFolder("pixart_sigma");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        // One layer more than the checkpoint holds, and caption channels it does not have.
        var config = PixArtConfig.FromJson(json.RootElement) with { NumLayers = 3, CaptionChannels = 31 };
        using var model = new PixArtTransformer2DModel(config);
        var source = new GoldenTensorSource(GoldenTensors.Load(Path.Combine(folder, "diffusion_pytorch_model.safetensors")));
        var error = Assert.Throws<XDitException>(() => WeightLoader.Load(model, source, context, DType.F32))!;
        Assert.That(error.Message, Does.Contain("missing: transformer_blocks.2."));
        Assert.That(error.Message, Does.Contain("caption_projection.linear_1.weight: [32, 32] in the checkpoint, [32, 31] expected"));
        Assert.That(model.NamedParameters().All(p => !p.Parameter.IsLoaded), "nothing is loaded from a mismatched checkpoint");

        using var smaller = new PixArtTransformer2DModel(PixArtConfig.FromJson(json.RootElement) with { NumLayers = 1 });
        var unexpected = Assert.Throws<XDitException>(() => WeightLoader.Load(smaller, source, context, DType.F32))!;
        Assert.That(unexpected.Message, Does.Contain("unexpected: transformer_blocks.1."));
    }
}
