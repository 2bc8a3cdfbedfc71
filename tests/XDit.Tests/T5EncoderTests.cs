using System.Text.Json;
using XDit.Models.T5;
using XDit.Native;
using XDit.Nn;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The T5 v1.1 encoder against transformers' golden outputs (with and without the padding
/// mask, at a length past the relative-position clamp), its configuration reader, the feed-forward
/// variants against an fp64 reference, the tied embedding, and its error paths.</summary>
[TestFixture]
public class T5EncoderTests
{
    const string CaseName = "text/t5_encoder";

    sealed record GoldenCase(string Folder, JsonElement Case, T5Config Config, GoldenTensors Inputs, GoldenTensors Outputs)
    {
        public long[] Ids => Inputs.I64("input_ids");
        public int Batch => (int)Inputs.Shape("input_ids")[0];
        public GoldenTensorSource Weights() => new(GoldenTensors.Load(Path.Combine(Folder, "model.safetensors")));
    }

    static GoldenCase LoadCase()
    {
        var folder = GoldenTensors.CaseFolder(CaseName);
        using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        using var configJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        return new GoldenCase(folder, caseJson.RootElement.Clone(), T5Config.FromJson(configJson.RootElement),
            GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors")), GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors")));
    }

    static T5EncoderModel LoadModel(GoldenCase golden, DeviceContext context, DType dtype, ITensorSource? source = null)
    {
        var model = new T5EncoderModel(golden.Config);
        try
        {
            model.LoadWeights(source ?? golden.Weights(), context, dtype);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The case's calls with (or without) an attention mask: the inputs they pass and the
    /// outputs they name, as case.json lists them.</summary>
    static List<(long[]? Mask, string[] Outputs)> Calls(GoldenCase golden, bool withMask)
    {
        var calls = new List<(long[]?, string[])>();
        foreach (var call in golden.Case.GetProperty("calls").EnumerateArray())
        {
            var kwargs = call.GetProperty("kwargs");
            var hasMask = kwargs.TryGetProperty("attention_mask", out var mask);
            if (hasMask != withMask) continue;
            Assert.That(kwargs.GetProperty("input_ids").GetString(), Is.EqualTo("inputs:input_ids"));
            if (hasMask) Assert.That(mask.GetString(), Does.StartWith("inputs:"));
            var outputs = call.GetProperty("outputs").EnumerateObject().Select(o => o.Name).ToArray();
            calls.Add((hasMask ? golden.Inputs.I64(mask.GetString()!["inputs:".Length..]) : null, outputs));
        }
        Assert.That(calls, Is.Not.Empty, $"case.json has no call {(withMask ? "with" : "without")} an attention mask");
        return calls;
    }

    static double Tolerance(GoldenCase golden, string name) => golden.Case.GetProperty("tolerance").GetProperty(name).GetDouble();

    [TestCase(true)]
    [TestCase(false)]
    public void MatchesTransformers(bool withMask)
    {
        var golden = LoadCase();
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        Assert.That(golden.Ids.Length / golden.Batch, Is.GreaterThan(golden.Config.RelativeAttentionMaxDistance),
            "the case is long enough to reach the clamped relative-position bucket");
        foreach (var (mask, outputs) in Calls(golden, withMask))
        {
            using var hidden = model.Forward(golden.Ids, mask, golden.Batch, context);
            foreach (var name in outputs)
            {
                Assert.That(hidden.Shape.ToArray(), Is.EqualTo(golden.Outputs.Shape(name)), name);
                var error = Reference.RelativeL2(hidden.ToArray<float>(), golden.Outputs.F32(name));
                // The case's strict bound (1e-5), which a correct float32 port meets; its pass bound is 1e-4.
                Assert.That(error, Is.LessThanOrEqualTo(Tolerance(golden, "strict_value")), $"{name}: relative L2 {error:E2}");
            }
        }
    }

    [Test]
    public void PaddingMaskChangesTheOutput()
    {
        // Guards the mask test against a case whose mask would make no difference.
        var golden = LoadCase();
        var masked = golden.Outputs.F32(Calls(golden, withMask: true)[0].Outputs[0]);
        var unmasked = golden.Outputs.F32(Calls(golden, withMask: false)[0].Outputs[0]);
        Assert.That(Reference.RelativeL2(unmasked, masked), Is.GreaterThan(100 * Tolerance(golden, "value")));
    }

    [Test]
    public void PositionBiasEqualsTransformersComputeBias()
    {
        var golden = LoadCase();
        var debugFile = Path.Combine(golden.Folder, "debug.safetensors");
        if (!File.Exists(debugFile)) Assert.Ignore("this golden set has no debug.safetensors");
        var debug = GoldenTensors.Load(debugFile);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        var length = golden.Ids.Length / golden.Batch;
        using var bias = model.Blocks[0].SelfAttention.PositionBias(length);
        Assert.That(bias.Shape.ToArray(), Is.EqualTo(debug.Shape("position_bias_unmasked")));
        Assert.That(bias.ToArray<float>(), Is.EqualTo(debug.F32("position_bias_unmasked")), "a gather of the same floats is exact");
        Assert.That(model.Blocks.Skip(1).All(b => b.SelfAttention.RelativeAttentionBias is null), "only block 0 has a bias table");
    }

    [Test]
    public void Bf16StaysCloseToTheFloat32Reference()
    {
        var golden = LoadCase();
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.BF16);
        var (mask, outputs) = Calls(golden, withMask: true)[0];
        using var hidden = model.Forward(golden.Ids, mask, golden.Batch, context);
        Assert.That(hidden.DType, Is.EqualTo(DType.BF16));
        using var f32 = hidden.To(DType.F32);
        var error = Reference.RelativeL2(f32.ToArray<float>(), golden.Outputs.F32(outputs[0]));
        // bf16 keeps 8 significant bits. This tiny random model is sensitive (T5 does not scale its attention
        // scores): rounding the weights alone to bf16 moves the visible case by 1.6e-2, and the bf16 run
        // lands at 1.9e-2. A wrong bf16 path (a bias or mask dropped, a table misread) is off by O(1).
        Assert.That(error, Is.LessThan(5e-2), $"relative L2 {error:E2}");
    }

    // ---- checkpoints --------------------------------------------------------------------------

    [Test]
    public void TiedEmbeddingLoadsFromEitherNameOrBoth()
    {
        var golden = LoadCase();
        var (mask, outputs) = Calls(golden, withMask: true)[0];
        var expected = golden.Outputs.F32(outputs[0]);
        var weights = golden.Weights();
        using var context = Contexts.Cpu();

        // Older full-T5 files: the embedding under its tied name only, or under both, plus the decoder.
        var embedTokensOnly = new RenamedSource(weights, new() { ["encoder.embed_tokens.weight"] = "shared.weight" }, hideOriginals: true);
        var both = new RenamedSource(weights, new()
        {
            ["encoder.embed_tokens.weight"] = "shared.weight",
            ["decoder.block.0.layer.0.SelfAttention.q.weight"] = "encoder.block.0.layer.0.SelfAttention.q.weight",
            ["lm_head.weight"] = "shared.weight",
        }, hideOriginals: false);
        foreach (var source in new ITensorSource[] { embedTokensOnly, both })
        {
            using var model = LoadModel(golden, context, DType.F32, source);
            using var hidden = model.Forward(golden.Ids, mask, golden.Batch, context);
            Assert.That(Reference.RelativeL2(hidden.ToArray<float>(), expected), Is.LessThanOrEqualTo(Tolerance(golden, "strict_value")));
        }

        // The plain loader knows nothing of the tie: it names both sides of it.
        using var plain = new T5EncoderModel(golden.Config);
        var error = Assert.Throws<XDitException>(() => WeightLoader.Load(plain, embedTokensOnly, context, DType.F32))!;
        Assert.That(error.Message, Does.Contain("missing: shared.weight").And.Contain("unexpected: encoder.embed_tokens.weight"));
    }

    [Test]
    public void MismatchedCheckpointsAreReportedTogether()
    {
        var golden = LoadCase();
        var config = golden.Config;
        using var context = Contexts.Cpu();
        // One block more than the checkpoint holds, and a feed-forward width it does not have.
        using var larger = new T5EncoderModel(config with { NumLayers = config.NumLayers + 1, DFf = config.DFf + 1 });
        var error = Assert.Throws<XDitException>(() => WeightLoader.Load(larger, golden.Weights(), context, DType.F32))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain($"missing: encoder.block.{config.NumLayers}.layer.0.SelfAttention."));
        Assert.That(error.Message, Does.Contain(
            $"encoder.block.0.layer.1.DenseReluDense.wi_0.weight: [{config.DFf}, {config.DModel}] in the checkpoint, [{config.DFf + 1}, {config.DModel}] expected"));
        Assert.That(larger.NamedParameters().All(p => !p.Parameter.IsLoaded), "nothing is loaded from a mismatched checkpoint");

        using var smaller = new T5EncoderModel(config with { NumLayers = config.NumLayers - 1 });
        var unexpected = Assert.Throws<XDitException>(() => smaller.LoadWeights(golden.Weights(), context, DType.F32))!;
        Assert.That(unexpected.Message, Does.Contain($"unexpected: encoder.block.{config.NumLayers - 1}."));

        // The original T5's ReLU feed-forward has wi where v1.1 has wi_0 and wi_1.
        using var relu = new T5EncoderModel(config with { IsGatedAct = false, DenseActFn = T5Activation.Relu });
        var ungated = Assert.Throws<XDitException>(() => relu.LoadWeights(golden.Weights(), context, DType.F32))!;
        Assert.That(ungated.Message, Does.Contain("missing: encoder.block.0.layer.1.DenseReluDense.wi.weight")
            .And.Contain("encoder.block.0.layer.1.DenseReluDense.wi_0.weight"));
    }

    // ---- error paths --------------------------------------------------------------------------

    [Test]
    public void F16IsRejected()
    {
        var golden = LoadCase();
        using var context = Contexts.Cpu();
        using var model = new T5EncoderModel(golden.Config);
        var error = Assert.Throws<XDitException>(() => model.LoadWeights(golden.Weights(), context, DType.F16))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.Unsupported));
        Assert.That(error.Message, Does.Contain("f16").And.Contain("f32 or bf16"));
        Assert.That(model.NamedParameters().All(p => !p.Parameter.IsLoaded));

        // Loaded in f16 behind its back, the model still refuses to run.
        WeightLoader.Load(model, golden.Weights(), context, DType.F16);
        var run = Assert.Throws<XDitException>(() => model.Forward(golden.Ids, null, golden.Batch, context))!;
        Assert.That(run.Status, Is.EqualTo(XditStatus.Unsupported));
        Assert.That(run.Message, Does.Contain("loaded weights is f16"));
    }

    [Test]
    public void IdsOutsideTheVocabularyAreNamed()
    {
        var golden = LoadCase();
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        var vocab = golden.Config.VocabSize;
        foreach (var bad in new long[] { vocab, -1 })
        {
            var ids = (long[])golden.Ids.Clone();
            ids[3] = bad;
            var error = Assert.Throws<XDitException>(() => model.Forward(ids, null, golden.Batch, context))!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(error.Message, Does.Contain($"token id {bad} at [0, 3]").And.Contain($"vocabulary of {vocab}"));
        }
        var (mask, outputs) = Calls(golden, withMask: true)[0];
        using var hidden = model.Forward(golden.Ids, mask, golden.Batch, context);
        Assert.That(Reference.RelativeL2(hidden.ToArray<float>(), golden.Outputs.F32(outputs[0])),
            Is.LessThanOrEqualTo(Tolerance(golden, "strict_value")), "the model still works after the errors");
    }

    [Test]
    public void MalformedInputsAreNamed()
    {
        var golden = LoadCase();
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, DType.F32);
        var ids = golden.Ids;
        var length = ids.Length / golden.Batch;
        string Message(long[] ids, long[]? mask, int batch) =>
            Assert.Throws<XDitException>(() => model.Forward(ids, mask, batch, context))!.Message;

        Assert.That(Message(ids, null, ids.Length + 1), Does.Contain($"{ids.Length} ids do not form {ids.Length + 1}"));
        Assert.That(Message(ids, new long[ids.Length - 1], golden.Batch), Does.Contain($"{ids.Length - 1} values for ids [{golden.Batch}, {length}]"));
        var two = Enumerable.Repeat(1L, ids.Length).ToArray();
        two[length + 5] = 2;
        Assert.That(Message(ids, two, golden.Batch), Does.Contain("attention mask [1, 5] is 2"));
        var emptyRow = Enumerable.Repeat(1L, ids.Length).ToArray();
        Array.Clear(emptyRow, length, length);
        Assert.That(Message(ids, emptyRow, golden.Batch), Does.Contain("row 1 has no real token"));

        using var other = Contexts.Cpu();
        Assert.That(Assert.Throws<XDitException>(() => model.Forward(ids, null, golden.Batch, other))!.Message,
            Does.Contain("another context"));
    }

    // ---- configuration ------------------------------------------------------------------------

    [Test]
    public void GoldenConfigIsTheGatedGeluOfT5V11()
    {
        var golden = LoadCase();
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(golden.Folder, "config.json")));
        var root = json.RootElement;
        var config = golden.Config;
        Assert.That(root.GetProperty("feed_forward_proj").GetString(), Is.EqualTo("gated-gelu"));
        Assert.That(config.DenseActFn, Is.EqualTo(T5Activation.GeluTanh));
        Assert.That(config.IsGatedAct, Is.True);
        Assert.That(config.VocabSize, Is.EqualTo(root.GetProperty("vocab_size").GetInt32()));
        Assert.That(config.DModel, Is.EqualTo(root.GetProperty("d_model").GetInt32()));
        Assert.That(config.DKv, Is.EqualTo(root.GetProperty("d_kv").GetInt32()));
        Assert.That(config.DFf, Is.EqualTo(root.GetProperty("d_ff").GetInt32()));
        Assert.That(config.NumLayers, Is.EqualTo(root.GetProperty("num_layers").GetInt32()));
        Assert.That(config.NumHeads, Is.EqualTo(root.GetProperty("num_heads").GetInt32()));
        Assert.That(config.LayerNormEpsilon, Is.EqualTo(root.GetProperty("layer_norm_epsilon").GetDouble()));
        using var model = new T5EncoderModel(config);
        Assert.That(model.NamedParameters().Select(p => p.Path).Order(),
            Is.EqualTo(golden.Case.GetProperty("weight_names").EnumerateArray().Select(n => n.GetString()).Order()));
    }

    static T5Config Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return T5Config.FromJson(document.RootElement);
    }

    [Test]
    public void MissingFieldsTakeTransformersDefaults()
    {
        var config = Parse("{}");
        Assert.That(config, Is.EqualTo(new T5Config
        {
            VocabSize = 32128, DModel = 512, DKv = 64, DFf = 2048, NumLayers = 6, NumHeads = 8,
            RelativeAttentionNumBuckets = 32, RelativeAttentionMaxDistance = 128, LayerNormEpsilon = 1e-6,
            DenseActFn = T5Activation.Relu, IsGatedAct = false,
        }));
    }

    [TestCase("relu", T5Activation.Relu, false)]
    [TestCase("gated-gelu", T5Activation.GeluTanh, true)]
    [TestCase("gelu", T5Activation.GeluErf, false)]
    [TestCase("gated-relu", T5Activation.Relu, true)]
    [TestCase("gated-silu", T5Activation.Silu, true)]
    [TestCase("gelu_new", T5Activation.GeluTanh, false)]
    public void FeedForwardProjIsParsedLikeTransformers(string proj, T5Activation activation, bool gated)
    {
        var config = Parse($$"""{"feed_forward_proj": "{{proj}}"}""");
        Assert.That((config.DenseActFn, config.IsGatedAct), Is.EqualTo((activation, gated)));
    }

    [Test]
    public void StoredDenseActFnTakesPrecedenceAsInTransformers()
    {
        var config = Parse("""{"feed_forward_proj": "gated-gelu", "dense_act_fn": "gelu", "is_gated_act": true}""");
        Assert.That((config.DenseActFn, config.IsGatedAct), Is.EqualTo((T5Activation.GeluErf, true)));
    }

    [TestCase("""{"feed_forward_proj": "gated-gelu-new"}""", XditStatus.InvalidArgument, "not of the form")]
    [TestCase("""{"feed_forward_proj": "fast-gelu"}""", XditStatus.InvalidArgument, "not of the form")]
    [TestCase("""{"feed_forward_proj": "gated-quick_gelu"}""", XditStatus.Unsupported, "activation \"quick_gelu\" is not supported")]
    [TestCase("""{"model_type": "umt5"}""", XditStatus.Unsupported, "model_type \"umt5\" is not supported")]
    [TestCase("""{"num_heads": 0}""", XditStatus.InvalidArgument, "num_heads = 0 is outside 1 ..")]
    // Found by the config fuzzing (ReliabilityTests): a 64-bit size used to end in a FormatException.
    [TestCase("""{"d_kv": 9223372036854775807}""", XditStatus.InvalidArgument, "\"d_kv\" is the number 9223372036854775807, expected an integer")]
    [TestCase("""{"d_model": 1e300}""", XditStatus.InvalidArgument, "\"d_model\" is the number 1e300, expected an integer")]
    [TestCase("""{"relative_attention_num_buckets": 2}""", XditStatus.InvalidArgument, "leave no logarithmic buckets")]
    public void UnsupportedConfigsAreRejected(string json, XditStatus status, string message)
    {
        var error = Assert.Throws<XDitException>(() => Parse(json))!;
        Assert.That(error.Status, Is.EqualTo(status));
        Assert.That(error.Message, Does.StartWith("config.json: ").And.Contain(message));
    }

    // ---- feed-forward variants ----------------------------------------------------------------

    /// <summary>The variants the golden case does not cover, against an fp64 evaluation of
    /// <c>wo(act(wi_0 x) · wi_1 x)</c> / <c>wo(act(wi x))</c>.</summary>
    [TestCase("relu")]
    [TestCase("gated-relu")]
    [TestCase("gelu")]
    [TestCase("gated-silu")]
    [TestCase("gated-gelu")]
    public void FeedForwardVariantsMatchAnFp64Reference(string proj)
    {
        const int tokens = 6, dModel = 8, dFf = 12;
        var config = Parse($$"""{"feed_forward_proj": "{{proj}}", "d_model": {{dModel}}, "d_ff": {{dFf}}}""");
        var random = new Random(proj.Length * 7 + 1);
        var weights = new Dictionary<string, (float[] Values, long[] Shape)>
        {
            ["wo.weight"] = (Reference.RandomFloats(random, dModel * dFf, 0.3), [dModel, dFf]),
        };
        foreach (var name in config.IsGatedAct ? new[] { "wi_0", "wi_1" } : ["wi"])
            weights[name + ".weight"] = (Reference.RandomFloats(random, dFf * dModel, 0.5), [dFf, dModel]);
        var x = Reference.RandomFloats(random, tokens * dModel, 2);

        using var context = Contexts.Cpu();
        using var feedForward = new T5FeedForward(config);
        WeightLoader.Load(feedForward, new ArraySource(weights), context, DType.F32);
        using var scope = new TensorScope();
        var actual = feedForward.Forward(Tensor.FromArray(context, x, 1, tokens, dModel)).ToArray<float>();

        Func<double, double> act = config.DenseActFn switch
        {
            T5Activation.Relu => v => Math.Max(v, 0),
            T5Activation.GeluTanh => Reference.GeluTanh,
            T5Activation.GeluErf => Reference.GeluErf,
            _ => Reference.Silu,
        };
        double Dot(string weight, int row, Func<int, double> input)
        {
            var w = weights[weight].Values;
            var width = (int)weights[weight].Shape[1];
            double sum = 0;
            for (int i = 0; i < width; i++) sum += w[row * width + i] * input(i);
            return sum;
        }
        var expected = new double[tokens * dModel];
        for (int t = 0; t < tokens; t++)
        {
            double Input(int i) => x[t * dModel + i];
            var hidden = new double[dFf];
            for (int f = 0; f < dFf; f++)
                hidden[f] = config.IsGatedAct ? act(Dot("wi_0.weight", f, Input)) * Dot("wi_1.weight", f, Input) : act(Dot("wi.weight", f, Input));
            for (int d = 0; d < dModel; d++) expected[t * dModel + d] = Dot("wo.weight", d, f => hidden[f]);
        }
        Assert.That(Reference.RelativeL2(actual, expected), Is.LessThan(1e-6));
    }

    // ---- sources ------------------------------------------------------------------------------

    /// <summary>Host arrays as a tensor source.</summary>
    sealed class ArraySource(Dictionary<string, (float[] Values, long[] Shape)> tensors) : ITensorSource
    {
        public IReadOnlyCollection<string> Names => tensors.Keys;

        public IReadOnlyList<long> Shape(string name) => tensors[name].Shape;

        public Tensor Load(string name, DeviceContext context, DType dtype)
        {
            using var f32 = Tensor.FromArray(context, tensors[name].Values, tensors[name].Shape);
            return f32.To(dtype);
        }
    }

    /// <summary>A source with extra names that read other names' tensors (<c>alias → original</c>), the
    /// originals hidden or not: checkpoints that store a tensor under another name, or twice.</summary>
    sealed class RenamedSource(ITensorSource inner, Dictionary<string, string> aliases, bool hideOriginals) : ITensorSource
    {
        public IReadOnlyCollection<string> Names =>
            inner.Names.Where(n => !hideOriginals || !aliases.ContainsValue(n)).Concat(aliases.Keys).ToList();

        public IReadOnlyList<long> Shape(string name) => inner.Shape(aliases.GetValueOrDefault(name, name));

        public Tensor Load(string name, DeviceContext context, DType dtype) => inner.Load(aliases.GetValueOrDefault(name, name), context, dtype);
    }
}
