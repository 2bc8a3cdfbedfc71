using System.Text.Json;
using XDit.Models.SD3;
using XDit.Native;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>SD3 (qk_norm None) and SD3.5-medium (RMS q/k norms, dual attention) transformers against the
/// golden outputs of diffusers, their stages against diffusers' recorded activations, the configuration
/// reader, the loader's report of mismatched checkpoints, and invalid inputs.</summary>
[TestFixture]
public class SD3Tests
{
    sealed record GoldenCase(string Name, string Folder, JsonElement Case, SD3Config Config, GoldenTensors Inputs, GoldenTensors Outputs)
    {
        public GoldenTensorSource Weights() => new(GoldenTensors.Load(Path.Combine(Folder, "diffusion_pytorch_model.safetensors")));
        public double StrictTolerance => Case.GetProperty("tolerance").GetProperty("strict_value").GetDouble();
        public Tensor Input(DeviceContext context, string name) => Tensor.FromArray(context, Inputs.F32(name), Inputs.Shape(name));
    }

    static GoldenCase LoadCase(string name)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        using var configJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return new GoldenCase(name, folder, caseJson.RootElement.Clone(), SD3Config.FromJson(configJson.RootElement),
            GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors")), GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors")));
    }

    static SD3Transformer2DModel LoadModel(GoldenCase golden, DeviceContext context)
    {
        var model = new SD3Transformer2DModel(golden.Config);
        try
        {
            WeightLoader.Load(model, golden.Weights(), context, DType.F32);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The case's call: every argument as case.json maps it to the inputs file.</summary>
    static Tensor Run(SD3Transformer2DModel model, GoldenCase golden, DeviceContext context)
    {
        var kwargs = golden.Case.GetProperty("call").GetProperty("kwargs");
        string Input(string argument) => kwargs.GetProperty(argument).GetString()!["inputs:".Length..];
        using var scope = new TensorScope();
        var latents = golden.Input(context, Input("hidden_states"));
        var text = golden.Input(context, Input("encoder_hidden_states"));
        var pooled = golden.Input(context, Input("pooled_projections"));
        return model.Forward(latents, golden.Inputs.F32(Input("timestep")), text, pooled).MoveToOuterScope();
    }

    [TestCase("sd3")]
    [TestCase("sd35")]
    public void MatchesDiffusers(string name)
    {
        var golden = LoadCase(name);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var sample = Run(model, golden, context);
        // The model's one output; the case stores nothing else.
        Assert.That(golden.Outputs.Names, Is.EquivalentTo(new[] { golden.Case.GetProperty("primary_output").GetString() }));
        var output = golden.Outputs.Names.Single();
        Assert.That(sample.Shape.ToArray(), Is.EqualTo(golden.Outputs.Shape(output)));
        var error = Reference.RelativeL2(sample.ToArray<float>(), golden.Outputs.F32(output));
        // The case's strict bound (1e-5), which a correct float32 port meets; its pass bound is 1e-4.
        Assert.That(error, Is.LessThan(golden.StrictTolerance), $"{name}/{output}: relative L2 {error:E2}");
    }

    /// <summary>The stages against the activations diffusers recorded during the same call, so that a
    /// mismatch is found where it starts: the cropped position table, the conditioning, the text
    /// projection, and both streams after the first (for sd35: dual-attention) block.</summary>
    [TestCase("sd3")]
    [TestCase("sd35")]
    public void StagesMatchDiffusersActivations(string name)
    {
        var golden = LoadCase(name);
        var debugFile = Path.Combine(golden.Folder, "debug.safetensors");
        if (!File.Exists(debugFile)) Assert.Ignore("this golden set has no debug.safetensors");
        var debug = GoldenTensors.Load(debugFile);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var scope = new TensorScope();
        void Check(string key, Tensor actual)
        {
            Assert.That(actual.Shape.ToArray(), Is.EqualTo(debug.Shape(key)), key);
            var error = Reference.RelativeL2(actual.ToArray<float>(), debug.F32(key));
            Assert.That(error, Is.LessThan(golden.StrictTolerance), $"{name}/{key}: relative L2 {error:E2}");
        }

        var image = model.PatchEmbedding.Forward(golden.Input(context, "hidden_states"));
        Check("pos_embed", image);
        var conditioning = model.TimeTextEmbedding.Forward(Tensor.FromArray(context, golden.Inputs.F32("timestep"), golden.Inputs.F32("timestep").Length),
            golden.Input(context, "pooled_projections"));
        Check("time_text_embed", conditioning);
        var text = model.ContextEmbedder.Forward(golden.Input(context, "encoder_hidden_states"));
        Check("context_embedder", text);
        var block = model.Blocks[0];
        Assert.That(block.SecondAttention is not null, Is.EqualTo(golden.Config.HasDualAttention(0)));
        var (nextImage, nextText) = block.Forward(image, text, Ops.Elementwise.Unary(Ops.UnaryOp.Silu, conditioning));
        Check("transformer_blocks.0.0", nextText!);
        Check("transformer_blocks.0.1", nextImage);
    }

    // ---- configuration ------------------------------------------------------------------------

    [TestCase("sd3")]
    [TestCase("sd35")]
    public void GoldenConfigsAreReadAndNameEveryCheckpointTensor(string name)
    {
        var golden = LoadCase(name);
        var config = golden.Config;
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(golden.Folder, "config.json")));
        var root = json.RootElement;
        Assert.That(config.SampleSize, Is.EqualTo(root.GetProperty("sample_size").GetInt32()));
        Assert.That(config.PatchSize, Is.EqualTo(root.GetProperty("patch_size").GetInt32()));
        Assert.That(config.InChannels, Is.EqualTo(root.GetProperty("in_channels").GetInt32()));
        Assert.That(config.OutChannels, Is.EqualTo(root.GetProperty("out_channels").GetInt32()));
        Assert.That(config.NumLayers, Is.EqualTo(root.GetProperty("num_layers").GetInt32()));
        Assert.That(config.NumAttentionHeads, Is.EqualTo(root.GetProperty("num_attention_heads").GetInt32()));
        Assert.That(config.AttentionHeadDim, Is.EqualTo(root.GetProperty("attention_head_dim").GetInt32()));
        Assert.That(config.JointAttentionDim, Is.EqualTo(root.GetProperty("joint_attention_dim").GetInt32()));
        Assert.That(config.CaptionProjectionDim, Is.EqualTo(root.GetProperty("caption_projection_dim").GetInt32()));
        Assert.That(config.PooledProjectionDim, Is.EqualTo(root.GetProperty("pooled_projection_dim").GetInt32()));
        Assert.That(config.PosEmbedMaxSize, Is.EqualTo(root.GetProperty("pos_embed_max_size").GetInt32()));
        Assert.That(config.DualAttentionLayers, Is.EqualTo(root.GetProperty("dual_attention_layers").EnumerateArray().Select(e => e.GetInt32())));
        Assert.That(config.QkRmsNorm, Is.EqualTo(root.GetProperty("qk_norm").ValueKind == JsonValueKind.String));

        using var model = new SD3Transformer2DModel(config);
        var checkpoint = GoldenTensors.Load(Path.Combine(golden.Folder, "diffusion_pytorch_model.safetensors"));
        Assert.That(model.NamedParameters().Select(p => p.Path), Is.EquivalentTo(checkpoint.Names));
        Assert.That(model.Blocks.Select(b => b.ContextPreOnly), Is.EqualTo(Enumerable.Range(0, config.NumLayers).Select(i => i == config.NumLayers - 1)));
    }

    static SD3Config Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return SD3Config.FromJson(document.RootElement);
    }

    [Test]
    public void MissingFieldsTakeDiffusersDefaults()
    {
        var config = Parse("{}");
        Assert.That(config.DualAttentionLayers, Is.Empty);
        Assert.That(config, Is.EqualTo(new SD3Config
        {
            SampleSize = 128, PatchSize = 2, InChannels = 16, NumLayers = 18, AttentionHeadDim = 64, NumAttentionHeads = 18,
            JointAttentionDim = 4096, CaptionProjectionDim = 1152, PooledProjectionDim = 2048, OutChannels = 16,
            PosEmbedMaxSize = 96, QkRmsNorm = false,
            DualAttentionLayers = config.DualAttentionLayers, // the record compares the list by reference
        }));
        // out_channels = null (None) means in_channels; dual_attention_layers = null means none.
        var nulls = Parse("""{"in_channels": 4, "out_channels": null, "dual_attention_layers": null, "qk_norm": null}""");
        Assert.That((nulls.OutChannels, nulls.DualAttentionLayers.Count, nulls.QkRmsNorm), Is.EqualTo((4, 0, false)));
    }

    [TestCase("""{"qk_norm": "layer_norm"}""", XditStatus.Unsupported, "qk_norm \"layer_norm\" is not supported")]
    [TestCase("""{"pos_embed_max_size": null}""", XditStatus.Unsupported, "pos_embed_max_size is null")]
    [TestCase("""{"num_layers": 2, "dual_attention_layers": [0, 2]}""", XditStatus.InvalidArgument, "names layer 2, outside the 2 layers")]
    [TestCase("""{"caption_projection_dim": 1536}""", XditStatus.InvalidArgument, "caption_projection_dim 1536 differs from the hidden size 1152")]
    [TestCase("""{"num_attention_heads": 0}""", XditStatus.InvalidArgument, "num_attention_heads = 0 is outside 1 ..")]
    [TestCase("""{"patch_size": "2"}""", XditStatus.InvalidArgument, "\"patch_size\" is a string \"2\", expected an integer")]
    public void UnsupportedConfigsAreRejected(string json, XditStatus status, string message)
    {
        var error = Assert.Throws<XDitException>(() => Parse(json))!;
        Assert.That(error.Status, Is.EqualTo(status));
        Assert.That(error.Message, Does.StartWith("config.json: ").And.Contain(message));
    }

    // ---- checkpoints --------------------------------------------------------------------------

    [Test]
    public void MismatchedCheckpointsAreReportedTogether()
    {
        var sd3 = LoadCase("sd3");
        var sd35 = LoadCase("sd35");
        using var context = Contexts.Cpu();

        // One layer more: the checkpoint's last block becomes a full one, and a block is missing.
        using var deeper = new SD3Transformer2DModel(sd3.Config with { NumLayers = 3 });
        var error = Assert.Throws<XDitException>(() => WeightLoader.Load(deeper, sd3.Weights(), context, DType.F32))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("missing: transformer_blocks.1.attn.to_add_out.")
            .And.Contain("transformer_blocks.2.attn.add_k_proj.bias")
            .And.Contain("transformer_blocks.1.norm1_context.linear.weight: [64, 32] in the checkpoint, [192, 32] expected"));
        Assert.That(deeper.NamedParameters().All(p => !p.Parameter.IsLoaded), "nothing is loaded from a mismatched checkpoint");

        // An SD3.5-medium checkpoint in an SD3.0 model: the q/k norms and the second attention are left over.
        using var plain = new SD3Transformer2DModel(sd3.Config);
        var leftOver = Assert.Throws<XDitException>(() => WeightLoader.Load(plain, sd35.Weights(), context, DType.F32))!;
        Assert.That(leftOver.Message, Does.Contain("unexpected: transformer_blocks.0.attn.norm_added_k.weight")
            .And.Contain("transformer_blocks.0.attn2.to_q.weight")
            .And.Contain("transformer_blocks.0.norm1.linear.weight: [288, 32] in the checkpoint, [192, 32] expected")
            .And.Not.Contain("missing"));

        // And the other way round.
        using var dual = new SD3Transformer2DModel(sd35.Config);
        var missing = Assert.Throws<XDitException>(() => WeightLoader.Load(dual, sd3.Weights(), context, DType.F32))!;
        Assert.That(missing.Message, Does.Contain("missing: transformer_blocks.0.attn.norm_q.weight")
            .And.Contain("transformer_blocks.0.attn.norm_added_k.weight").And.Contain("transformer_blocks.0.attn2.to_out.0.bias").And.Not.Contain("unexpected"));
    }

    // ---- invalid inputs -----------------------------------------------------------------------

    [Test]
    public void InvalidInputsAreNamed()
    {
        var golden = LoadCase("sd3");
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var scope = new TensorScope();
        var latents = golden.Input(context, "hidden_states");          // [2, 16, 8, 8]
        var text = golden.Input(context, "encoder_hidden_states");     // [2, 5, 32]
        var pooled = golden.Input(context, "pooled_projections");      // [2, 24]
        var timesteps = golden.Inputs.F32("timestep");
        string Message(Tensor x, float[] t, Tensor e, Tensor p)
        {
            var error = Assert.Throws<XDitException>(() => model.Forward(x, t, e, p).Dispose())!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            return error.Message;
        }

        Assert.That(Message(Tensor.Zeros(context, DType.F32, 2, 4, 8, 8), timesteps, text, pooled),
            Does.Contain("latents (f32 [2, 4, 8, 8]) must be [B, 16, H, W]"));
        Assert.That(Message(Tensor.Zeros(context, DType.F32, 2, 16, 8, 7), timesteps, text, pooled),
            Does.Contain("latents (f32 [2, 16, 8, 7]): height and width must be multiples of the patch size 2"));
        Assert.That(Message(Tensor.Zeros(context, DType.F32, 2, 16, 34, 8), timesteps, text, pooled),
            Does.Contain("the 17×4 patch grid exceeds the position table's 16×16 (pos_embed_max_size)"));
        Assert.That(Message(latents, [500f], text, pooled), Does.Contain("timesteps [1] for a batch of 2"));
        Assert.That(Message(latents, timesteps, Tensor.Zeros(context, DType.F32, 2, 5, 31), pooled),
            Does.Contain("encoderHiddenStates (f32 [2, 5, 31]) must be [2, T, 32]"));
        Assert.That(Message(latents, timesteps, Tensor.Zeros(context, DType.F32, 1, 5, 32), pooled),
            Does.Contain("encoderHiddenStates (f32 [1, 5, 32]) must be [2, T, 32]"));
        Assert.That(Message(latents, timesteps, text, Tensor.Zeros(context, DType.F32, 2, 23)),
            Does.Contain("pooledProjections (f32 [2, 23]) must be [2, 24]"));
        Assert.That(Message(latents, timesteps, text.To(DType.BF16), pooled),
            Does.Contain("encoderHiddenStates (bf16 [2, 5, 32]) must have the weights' dtype f32"));
        using (var other = Contexts.Cpu())
            Assert.That(Message(Tensor.Zeros(other, DType.F32, 2, 16, 8, 8), timesteps, text, pooled),
                Does.Contain("latents (f32 [2, 16, 8, 8]) lives on another context"));

        // A smaller, non-square latent runs (another crop of the table), and the model still matches after the errors.
        using (var small = model.Forward(Tensor.Zeros(context, DType.F32, 2, 16, 4, 6), timesteps, text, pooled))
            Assert.That(small.Shape.ToArray(), Is.EqualTo(new long[] { 2, 16, 4, 6 }));
        using var sample = Run(model, golden, context);
        Assert.That(Reference.RelativeL2(sample.ToArray<float>(), golden.Outputs.F32("sample")), Is.LessThan(golden.StrictTolerance));
    }
}
