using System.Text.Json;
using XDit.Models.Flux;
using XDit.Native;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The Flux transformer (FLUX.1-dev with its guidance embedder, FLUX.1-schnell without) against
/// the golden outputs of diffusers, the pipeline's position ids, batching, bf16, the configuration
/// reader, the loader's report of mismatched checkpoints and the errors for invalid inputs.</summary>
[TestFixture]
public class FluxTests
{
    sealed record GoldenCase(string Name, string Folder, FluxConfig Config, GoldenTensors Inputs, GoldenTensors Outputs, double StrictTolerance)
    {
        public GoldenTensorSource Weights() => new(GoldenTensors.Load(Path.Combine(Folder, "diffusion_pytorch_model.safetensors")));

        public float[]? Guidance => Inputs.Names.Contains("guidance") ? Inputs.F32("guidance") : null;
    }

    static GoldenCase LoadCase(string name)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        using var configJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return new GoldenCase(name, folder, FluxConfig.FromJson(configJson.RootElement),
            GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors")), GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors")),
            caseJson.RootElement.GetProperty("tolerance").GetProperty("strict_value").GetDouble());
    }

    static FluxTransformer2DModel LoadModel(GoldenCase golden, DeviceContext context, DType dtype)
    {
        var model = new FluxTransformer2DModel(golden.Config);
        try
        {
            WeightLoader.Load(model, golden.Weights(), context, dtype);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The case's three input tensors on <paramref name="context"/> in <paramref name="dtype"/>
    /// (they belong to the caller's scope).</summary>
    static (Tensor Hidden, Tensor Encoder, Tensor Pooled) InputTensors(GoldenCase golden, DeviceContext context, DType dtype = DType.F32)
    {
        Tensor Load(string name) => Tensor.FromArray(context, golden.Inputs.F32(name), golden.Inputs.Shape(name)).To(dtype);
        return (Load("hidden_states"), Load("encoder_hidden_states"), Load("pooled_projections"));
    }

    static Tensor Run(FluxTransformer2DModel model, GoldenCase golden, DeviceContext context)
    {
        var (hidden, encoder, pooled) = InputTensors(golden, context);
        return model.Forward(hidden, encoder, pooled, golden.Inputs.F32("timestep"), golden.Guidance,
            golden.Inputs.F32("img_ids"), golden.Inputs.F32("txt_ids"));
    }

    // ---- golden outputs -------------------------------------------------------------------------

    [TestCase("flux_dev")]
    [TestCase("flux_schnell")]
    public void MatchesDiffusers(string name)
    {
        var golden = LoadCase(name);
        Assert.That(golden.Config.GuidanceEmbeds, Is.EqualTo(name == "flux_dev"));
        Assert.That(golden.Guidance, golden.Config.GuidanceEmbeds ? Is.Not.Null : Is.Null, "the case passes guidance exactly to dev");
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        using var scope = new TensorScope();

        var sample = Run(model, golden, context);

        Assert.That(sample.Shape.ToArray(), Is.EqualTo(golden.Outputs.Shape("sample")));
        var error = Reference.RelativeL2(sample.ToArray<float>(), golden.Outputs.F32("sample"));
        Assert.That(error, Is.LessThan(golden.StrictTolerance), $"{name}: relative L2 {error:E2}");
    }

    [TestCase("flux_dev")]
    [TestCase("flux_schnell")]
    public void PositionIdsAndTablesAreThePipelines(string name)
    {
        var golden = LoadCase(name);
        var hidden = golden.Inputs.Shape("latents_unpacked");
        int gridHeight = (int)hidden[2] / 2, gridWidth = (int)hidden[3] / 2;
        var textTokens = (int)golden.Inputs.Shape("encoder_hidden_states")[1];

        var imgIds = FluxPositionIds.Image(gridHeight, gridWidth);
        var txtIds = FluxPositionIds.Text(textTokens);

        Assert.That(imgIds, Is.EqualTo(golden.Inputs.F32("img_ids")), "FluxPipeline._prepare_latent_image_ids");
        Assert.That(txtIds, Is.EqualTo(golden.Inputs.F32("txt_ids")), "zeros");
        using var model = new FluxTransformer2DModel(golden.Config);
        var tables = model.PositionTables(imgIds, txtIds);
        Assert.That(Reference.RelativeL2(tables.Cos, golden.Outputs.F32("rope_cos")), Is.LessThan(1e-7), "text first, then image");
        Assert.That(Reference.RelativeL2(tables.Sin, golden.Outputs.F32("rope_sin")), Is.LessThan(1e-7));
    }

    [Test]
    public void ImageIdsOfANonSquareGridAreRowMajor()
    {
        // The golden grid is square; 2 × 3 tells rows from columns.
        Assert.That(FluxPositionIds.Image(2, 3), Is.EqualTo(new float[]
        {
            0, 0, 0, 0, 0, 1, 0, 0, 2,
            0, 1, 0, 0, 1, 1, 0, 1, 2,
        }));
        Assert.Throws<ArgumentOutOfRangeException>(() => FluxPositionIds.Image(0, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => FluxPositionIds.Text(0));
    }

    [Test]
    public void ForwardFreesEveryTemporary()
    {
        var golden = LoadCase("flux_dev");
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        using var scope = new TensorScope();
        var (hidden, encoder, pooled) = InputTensors(golden, context);
        var before = context.AllocatorStats.BytesInUse;

        using (var sample = model.Forward(hidden, encoder, pooled, golden.Inputs.F32("timestep"), golden.Guidance,
                   golden.Inputs.F32("img_ids"), golden.Inputs.F32("txt_ids")))
            Assert.That(context.AllocatorStats.BytesInUse, Is.GreaterThan(before), "the result is allocated");

        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(before), "only the result outlives the call");
    }

    [Test]
    public void EachSampleOfABatchGetsItsOwnConditioning()
    {
        // Sample 0 is the golden one; sample 1 has other latents, text, timestep and guidance. Sample 0 must
        // still match diffusers (nothing leaks across the batch through strided views), sample 1 differ.
        var golden = LoadCase("flux_dev");
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        using var scope = new TensorScope();
        Tensor Doubled(string name)
        {
            var values = golden.Inputs.F32(name);
            var shape = golden.Inputs.Shape(name).ToArray();
            shape[0] = 2;
            return Tensor.FromArray(context, [.. values, .. values.Select(v => -0.5f * v)], shape);
        }

        var sample = model.Forward(Doubled("hidden_states"), Doubled("encoder_hidden_states"), Doubled("pooled_projections"),
            [golden.Inputs.F32("timestep")[0], 0.3f], [golden.Guidance![0], 5f],
            golden.Inputs.F32("img_ids"), golden.Inputs.F32("txt_ids"));

        Assert.That(sample.Shape.ToArray(), Is.EqualTo(new long[] { 2, 16, 16 }));
        var expected = golden.Outputs.F32("sample");
        var first = sample.Narrow(0, 0, 1).Contiguous().ToArray<float>();
        var second = sample.Narrow(0, 1, 1).Contiguous().ToArray<float>();
        Assert.That(Reference.RelativeL2(first, expected), Is.LessThan(golden.StrictTolerance), "sample 0");
        Assert.That(Reference.RelativeL2(second, expected), Is.GreaterThan(0.1), "sample 1 has inputs of its own");
    }

    [Test]
    public void Bf16StaysCloseToTheFloat32Reference()
    {
        // schnell's sigma 1.0 makes the timestep 1000, which bf16 holds exactly (dev's 0.75 does not, below).
        var golden = LoadCase("flux_schnell");
        Assert.That(golden.Inputs.F32("timestep"), Is.EqualTo(new[] { 1f }));
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.BF16);
        using var scope = new TensorScope();
        var (hidden, encoder, pooled) = InputTensors(golden, context, DType.BF16);

        var sample = model.Forward(hidden, encoder, pooled, golden.Inputs.F32("timestep"), golden.Guidance,
            golden.Inputs.F32("img_ids"), golden.Inputs.F32("txt_ids"));

        Assert.That(sample.DType, Is.EqualTo(DType.BF16));
        var error = Reference.RelativeL2(sample.To(DType.F32).ToArray<float>(), golden.Outputs.F32("sample"));
        // bf16 keeps 8 significant bits (~2e-3 per rounding); this lands at 7.5e-3, a wrong path is off by O(1).
        Assert.That(error, Is.LessThan(3e-2), $"relative L2 {error:E2}");
    }

    [Test]
    public void TimestepAndGuidanceAreScaledInTheWeightsDType()
    {
        // diffusers: timestep.to(hidden_states.dtype) * 1000. 750 = 0b10_1110_1110 needs 9 significant bits,
        // bf16 keeps 8: the tie between 748 and 752 rounds to even, 752. 3500 = 0b1101_1010_1100 rounds up to 3504. f16 (11 bits)
        // holds both; f32 multiplies in f32. (At 752 the dev case's output moves by 0.33 relative: the
        // sinusoid's fast frequencies turn by whole radians.)
        using var context = DeviceContext.Cpu(1);
        using var scope = new TensorScope();
        float[] Scaled(float[] values, DType dtype) =>
            FluxTransformer2DModel.TimesThousand(Tensor.FromArray(context, values, values.Length), dtype).ToArray<float>();
        float[] dev = [0.75f, 3.5f];
        Assert.That(Scaled(dev, DType.BF16), Is.EqualTo(new[] { 752f, 3504f }));
        Assert.That(Scaled(dev, DType.F16), Is.EqualTo(new[] { 750f, 3500f }));
        Assert.That(Scaled([0.3f], DType.F32), Is.EqualTo(new[] { 0.3f * 1000f }));
    }

    // ---- configuration --------------------------------------------------------------------------

    [Test]
    public void MissingConfigFieldsTakeDiffusersDefaults()
    {
        using var json = JsonDocument.Parse("""{"out_channels": null, "in_channels": 16}""");
        var config = FluxConfig.FromJson(json.RootElement);
        Assert.That(config.OutChannels, Is.EqualTo(16), "out_channels or in_channels");
        using var empty = JsonDocument.Parse("{}");
        var flux1 = FluxConfig.FromJson(empty.RootElement);
        Assert.That((flux1.InChannels, flux1.OutChannels, flux1.NumLayers, flux1.NumSingleLayers, flux1.InnerDim),
            Is.EqualTo((64, 64, 19, 38, 3072)));
        Assert.That((flux1.JointAttentionDim, flux1.PooledProjectionDim, flux1.PatchSize, flux1.GuidanceEmbeds),
            Is.EqualTo((4096, 768, 1, false)));
        Assert.That(flux1.AxesDimsRope, Is.EqualTo(new[] { 16, 56, 56 }));
    }

    [TestCase("""{"attention_head_dim": 16, "axes_dims_rope": [4, 6, 8]}""", "axes_dims_rope = [4, 6, 8] adds up to 18")]
    [TestCase("""{"attention_head_dim": 16, "axes_dims_rope": [4, 5, 7]}""", "positive even sizes")]
    [TestCase("""{"num_attention_heads": 0}""", "num_attention_heads = 0 is outside 1 ..")]
    [TestCase("""{"guidance_embeds": "yes"}""", "\"guidance_embeds\" is a string \"yes\", expected true or false")]
    [TestCase("""{"axes_dims_rope": 16}""", "\"axes_dims_rope\" is the number 16, expected an array")]
    public void InvalidConfigsAreRejected(string text, string message)
    {
        using var json = JsonDocument.Parse(text);
        var error = Assert.Throws<XDitException>(() => FluxConfig.FromJson(json.RootElement, "flux.json"))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith("flux.json: ").And.Contain(message));
    }

    // ---- checkpoints ----------------------------------------------------------------------------

    [Test]
    public void MismatchedCheckpointsAreReportedTogether()
    {
        using var context = Contexts.Cpu();
        var dev = LoadCase("flux_dev");
        var schnell = LoadCase("flux_schnell");

        // A dev model given schnell's weights lacks the guidance embedder; one more single block and another
        // text width do not fit either. All three are reported at once, and nothing is loaded.
        using var model = new FluxTransformer2DModel(dev.Config with { NumSingleLayers = 3, JointAttentionDim = 31 });
        var error = Assert.Throws<XDitException>(() => WeightLoader.Load(model, schnell.Weights(), context, DType.F32))!;
        Assert.That(error.Message, Does.Contain("missing: ").And.Contain("time_text_embed.guidance_embedder.linear_1.weight"));
        Assert.That(error.Message, Does.Contain("single_transformer_blocks.2.attn.to_q.weight"));
        Assert.That(error.Message, Does.Contain("context_embedder.weight: [32, 32] in the checkpoint, [32, 31] expected"));
        Assert.That(model.NamedParameters().All(p => !p.Parameter.IsLoaded), "nothing is loaded from a mismatched checkpoint");

        // A schnell model given dev's weights finds the guidance embedder unexpected.
        using var withoutGuidance = new FluxTransformer2DModel(schnell.Config);
        var unexpected = Assert.Throws<XDitException>(() => WeightLoader.Load(withoutGuidance, dev.Weights(), context, DType.F32))!;
        Assert.That(unexpected.Message, Does.Contain("4 unexpected: time_text_embed.guidance_embedder."));
    }

    [Test]
    public void ParameterNamesAreTheCheckpointsExactly()
    {
        foreach (var name in new[] { "flux_dev", "flux_schnell" })
        {
            var golden = LoadCase(name);
            using var model = new FluxTransformer2DModel(golden.Config);
            var names = model.NamedParameters().Select(p => p.Path).Order().ToArray();
            Assert.That(names, Is.EqualTo(golden.Weights().Names.Order().ToArray()), name);
        }
    }

    // ---- invalid inputs -------------------------------------------------------------------------

    [Test]
    public void GuidanceMustMatchTheModel()
    {
        using var context = Contexts.Cpu();
        foreach (var name in new[] { "flux_dev", "flux_schnell" })
        {
            var golden = LoadCase(name);
            using var model = LoadModel(golden, context, DType.F32);
            using var scope = new TensorScope();
            var (hidden, encoder, pooled) = InputTensors(golden, context);
            var wrongGuidance = golden.Guidance is null ? new[] { 3.5f } : null;
            var error = Assert.Throws<XDitException>(() => model.Forward(hidden, encoder, pooled, golden.Inputs.F32("timestep"),
                wrongGuidance, golden.Inputs.F32("img_ids"), golden.Inputs.F32("txt_ids")))!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(error.Message, Does.Contain(golden.Guidance is null ? "no guidance embedder" : "guidance value per sample is required"));
        }
    }

    [Test]
    public void InvalidInputsAreNamedWithTheirShapes()
    {
        var golden = LoadCase("flux_dev");
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        using var scope = new TensorScope();
        var (hidden, encoder, pooled) = InputTensors(golden, context);
        float[] timestep = golden.Inputs.F32("timestep"), guidance = golden.Guidance!;
        float[] imgIds = golden.Inputs.F32("img_ids"), txtIds = golden.Inputs.F32("txt_ids");
        string MessageOf(Action call)
        {
            var error = Assert.Throws<XDitException>(() => call())!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            return error.Message;
        }

        Assert.That(MessageOf(() => model.Forward(hidden, encoder, pooled, timestep, guidance, imgIds[..^3], txtIds)),
            Does.Contain("img_ids has 45 values, not [16, 3]"));
        Assert.That(MessageOf(() => model.Forward(hidden, encoder, pooled, timestep, guidance, imgIds, [.. txtIds, 0, 0, 0])),
            Does.Contain("txt_ids has 21 values, not [6, 3]"));
        Assert.That(MessageOf(() => model.Forward(hidden, encoder, pooled, [0.5f, 0.5f], guidance, imgIds, txtIds)),
            Does.Contain("timesteps [2] for a batch of 1"));
        Assert.That(MessageOf(() => model.Forward(hidden, encoder, pooled, timestep, [3.5f, 3.5f], imgIds, txtIds)),
            Does.Contain("guidance [2] for a batch of 1"));
        Assert.That(MessageOf(() => model.Forward(hidden.Narrow(2, 0, 8), encoder, pooled, timestep, guidance, imgIds, txtIds)),
            Does.Contain("hidden_states [1, 16, 8] must be packed latents [B, tokens, 16]"));
        Assert.That(MessageOf(() => model.Forward(hidden, encoder.Narrow(2, 0, 16), pooled, timestep, guidance, imgIds, txtIds)),
            Does.Contain("encoder_hidden_states [1, 6, 16] must be [1, tokens, 32]"));
        Assert.That(MessageOf(() => model.Forward(hidden, encoder, pooled.Unsqueeze(0), timestep, guidance, imgIds, txtIds)),
            Does.Contain("pooled_projections [1, 1, 24] must be [1, 24]"));
        Assert.That(MessageOf(() => model.Forward(hidden.To(DType.BF16), encoder, pooled, timestep, guidance, imgIds, txtIds)),
            Does.Contain("hidden_states (bf16 [1, 16, 16] on").And.Contain("must have the weights' dtype and context (f32 on"));
    }
}
