using System.Text.Json;
using System.Text.RegularExpressions;
using XDit.Models.Clip;
using XDit.Native;
using XDit.Nn;
using XDit.Tensors;
using XDit.Text;

namespace XDit.Tests;

/// <summary>The CLIP text encoders (CLIP-L style <c>CLIPTextModel</c>, bigG style
/// <c>CLIPTextModelWithProjection</c>) against transformers' golden outputs (every output each case
/// lists), the pooling rules, the padding mask, the attention and MLP against the recorded activations
/// and fp64 references, the configuration reader, checkpoint mismatches and invalid inputs.</summary>
[TestFixture]
public class ClipTextTests
{
    const string ClipL = "text/clip_text_l";
    const string ClipGProj = "text/clip_text_g_proj";
    static readonly string[] Cases = [ClipL, ClipGProj];

    sealed record GoldenCase(string Folder, JsonElement Case, ClipTextConfig Config, bool WithProjection,
        GoldenTensors Inputs, GoldenTensors Outputs)
    {
        public long[] Ids => Inputs.I64("input_ids");
        public int Batch => (int)Inputs.Shape("input_ids")[0];
        public int Length => (int)Inputs.Shape("input_ids")[1];
        public GoldenTensors Model => GoldenTensors.Load(Path.Combine(Folder, "model.safetensors"));
        public GoldenTensorSource Weights() => new(Model);
        public int[] EosPositions => Case.GetProperty("eos_positions").EnumerateArray().Select(p => p.GetInt32()).ToArray();
        public double Strict => Case.GetProperty("tolerance").GetProperty("strict_value").GetDouble();
        /// <summary>The name of the pooled result in outputs.safetensors: text_embeds with a projection.</summary>
        public string Pooled => WithProjection ? "text_embeds" : "pooler_output";

        public GoldenTensors Debug()
        {
            var file = Path.Combine(Folder, "debug.safetensors");
            if (!File.Exists(file)) Assert.Ignore("this golden set has no debug.safetensors");
            return GoldenTensors.Load(file);
        }
    }

    static GoldenCase LoadCase(string name)
    {
        var folder = GoldenTensors.CaseFolder(name);
        using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
        using var configJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var modelClass = caseJson.RootElement.GetProperty("model_class").GetString();
        Assert.That(modelClass, Is.AnyOf("CLIPTextModel", "CLIPTextModelWithProjection"));
        return new GoldenCase(folder, caseJson.RootElement.Clone(), ClipTextConfig.FromJson(configJson.RootElement),
            modelClass == "CLIPTextModelWithProjection",
            GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors")), GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors")));
    }

    static ClipTextModel LoadModel(GoldenCase golden, DeviceContext context, DType dtype = DType.F32,
        ClipTextConfig? config = null, ITensorSource? source = null, bool? withProjection = null)
    {
        var model = new ClipTextModel(config ?? golden.Config, withProjection ?? golden.WithProjection);
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

    /// <summary>The tensor an output spec of case.json names: <c>output.last_hidden_state</c>,
    /// <c>output.pooler_output</c>, <c>output.text_embeds</c> or <c>output.hidden_states[i]</c> (i may be
    /// negative, as in Python).</summary>
    static Tensor Select(ClipTextOutput output, string spec)
    {
        switch (spec)
        {
            case "output.last_hidden_state": return output.LastHiddenState;
            case "output.pooler_output": return output.PooledOutput;
            case "output.text_embeds": return output.TextEmbeds ?? throw new AssertionException("the model has no text_embeds");
        }
        var match = Regex.Match(spec, @"^output\.hidden_states\[(-?\d+)\]$");
        Assert.That(match.Success, $"unknown output spec {spec}");
        var index = int.Parse(match.Groups[1].Value);
        return output.HiddenStates[index < 0 ? output.HiddenStates.Count + index : index];
    }

    static double RelativeL2(Tensor actual, float[] expected)
    {
        using var f32 = actual.To(DType.F32);
        return Reference.RelativeL2(f32.ToArray<float>(), expected);
    }

    // ---- golden outputs -----------------------------------------------------------------------

    [TestCaseSource(nameof(Cases))]
    public void MatchesTransformers(string name)
    {
        var golden = LoadCase(name);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        var checkedOutputs = new HashSet<string>();
        foreach (var call in golden.Case.GetProperty("calls").EnumerateArray())
        {
            var kwargs = call.GetProperty("kwargs");
            Assert.That(kwargs.EnumerateObject().Select(k => k.Name), Is.SubsetOf(new[] { "input_ids", "output_hidden_states", "return_dict" }),
                "the call passes nothing beyond the ids (no attention mask, as in the pipelines)");
            Assert.That(kwargs.GetProperty("input_ids").GetString(), Is.EqualTo("inputs:input_ids"));
            var hiddenStates = kwargs.TryGetProperty("output_hidden_states", out var h) && h.GetBoolean();
            using var output = model.Forward(golden.Ids, golden.Batch, context, hiddenStates);
            Assert.That(output.HiddenStates, Has.Count.EqualTo(hiddenStates ? golden.Config.NumHiddenLayers + 1 : 0));
            Assert.That(output.TextEmbeds is not null, Is.EqualTo(golden.WithProjection));
            Assert.That(output.PooledPositions, Is.EqualTo(golden.EosPositions), "pooled at the case's eos positions");
            foreach (var spec in call.GetProperty("outputs").EnumerateObject())
            {
                var actual = Select(output, spec.Value.GetString()!);
                Assert.That(actual.Shape.ToArray(), Is.EqualTo(golden.Outputs.Shape(spec.Name)), spec.Name);
                var error = RelativeL2(actual, golden.Outputs.F32(spec.Name));
                // The case's strict bound (1e-5), which a correct float32 port meets; its pass bound is 1e-4.
                Assert.That(error, Is.LessThanOrEqualTo(golden.Strict), $"{spec.Name}: relative L2 {error:E2}");
                checkedOutputs.Add(spec.Name);
            }
        }
        Assert.That(checkedOutputs, Is.EquivalentTo(golden.Outputs.Names), "every stored output is checked");
    }

    [TestCaseSource(nameof(Cases))]
    public void TokenizerGivesTheCaseIds(string name)
    {
        // End to end from the prompts: the matching tokenizer folder, padded to the case's length.
        var golden = LoadCase(name);
        var tokenizer = ClipTokenizer.FromFolder(Path.Combine(golden.Folder, golden.Case.GetProperty("tokenizer").GetString()!));
        var texts = golden.Case.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var batch = tokenizer.EncodeBatch(texts, golden.Length);
        Assert.That(Enumerable.Range(0, batch.BatchSize).SelectMany(batch.Ids), Is.EqualTo(golden.Ids));
        Assert.That(golden.Config.EosTokenId, Is.EqualTo(tokenizer.EosId));
    }

    [TestCaseSource(nameof(Cases))]
    public void ReducedPrecisionStaysCloseToTheFloat32Reference(string name)
    {
        var golden = LoadCase(name);
        using var context = Contexts.Cpu();
        foreach (var dtype in new[] { DType.F16, DType.BF16 })
        {
            using var model = LoadModel(golden, context, dtype);
            using var output = model.Forward(golden.Ids, golden.Batch, context);
            Assert.That(output.LastHiddenState.DType, Is.EqualTo(dtype));
            // f16 keeps 11 significant bits, bf16 8: the visible cases land at about 1.3e-3 and 1e-2. A wrong
            // reduced-precision path (the mask lost to an f16 overflow, a table misread) is off by O(1).
            var bound = dtype == DType.F16 ? 1e-2 : 5e-2;
            foreach (var (actual, reference) in new[] { (output.LastHiddenState, "last_hidden_state"), (output.TextEmbeds ?? output.PooledOutput, golden.Pooled) })
            {
                var error = RelativeL2(actual, golden.Outputs.F32(reference));
                Assert.That(error, Is.LessThan(bound), $"{dtype.Name()} {reference}: relative L2 {error:E2}");
            }
        }
    }

    // ---- pooling ------------------------------------------------------------------------------

    [TestCaseSource(nameof(Cases))]
    public void LegacyEosTokenIdPoolsAtTheLargestId(string name)
    {
        // The real CLIP-L and bigG configs say eos_token_id 2, for which transformers takes the argmax of the
        // ids. <|endoftext|> is the largest id here as there, so the pooled result is the case's own (a search
        // for id 2 would pool elsewhere).
        var golden = LoadCase(name);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, config: golden.Config with { EosTokenId = ClipTextConfig.LegacyEosTokenId });
        using var output = model.Forward(golden.Ids, golden.Batch, context);
        Assert.That(output.PooledPositions, Is.EqualTo(golden.EosPositions));
        var error = RelativeL2(output.TextEmbeds ?? output.PooledOutput, golden.Outputs.F32(golden.Pooled));
        Assert.That(error, Is.LessThanOrEqualTo(golden.Strict), $"relative L2 {error:E2}");
    }

    [Test]
    public void PoolingTakesTheFirstEosOrPositionZero()
    {
        // With another eos_token_id the pooled row is the last hidden state at that id's first position,
        // or at position 0 where a row lacks it: rows of the golden last_hidden_state.
        var golden = LoadCase(ClipL);
        var ids = golden.Ids;
        var (batch, length, hidden) = (golden.Batch, golden.Length, golden.Config.HiddenSize);
        var last = golden.Outputs.F32("last_hidden_state");
        using var context = Contexts.Cpu();
        var absent = Enumerable.Range(0, golden.Config.VocabSize).First(id => !ids.Contains(id));
        foreach (var eos in new[] { ids[2], ids[length + 3], absent }.Where(id => id != ClipTextConfig.LegacyEosTokenId))
        {
            var positions = Enumerable.Range(0, batch).Select(b => Math.Max(Array.IndexOf(ids, eos, b * length, length) - b * length, 0)).ToArray();
            using var model = LoadModel(golden, context, config: golden.Config with { EosTokenId = (int)eos });
            using var output = model.Forward(ids, batch, context);
            Assert.That(output.PooledPositions, Is.EqualTo(positions), $"eos {eos}");
            var expected = positions.SelectMany((p, b) => last.Skip((b * length + p) * hidden).Take(hidden)).ToArray();
            Assert.That(RelativeL2(output.PooledOutput, expected), Is.LessThanOrEqualTo(golden.Strict), $"eos {eos}");
        }
    }

    // ---- attention mask -----------------------------------------------------------------------

    [TestCaseSource(nameof(Cases))]
    public void PaddingMaskChangesOnlyThePaddedPositions(string name)
    {
        // Causal attention: a prompt's own tokens never see the padding after them, so with the padding
        // mask every real position and the pooled result keep transformers' values; padded ones change.
        var golden = LoadCase(name);
        var (batch, length, hidden) = (golden.Batch, golden.Length, golden.Config.HiddenSize);
        var eos = golden.EosPositions;
        if (eos.Min() >= length - 1) Assert.Ignore("no row of this case is padded");
        var mask = new long[batch * length];
        for (int b = 0; b < batch; b++)
            for (int t = 0; t <= eos[b]; t++) mask[b * length + t] = 1;
        bool IsReal(int i) => mask[i / hidden] == 1;

        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var output = model.Forward(golden.Ids, batch, context, outputHiddenStates: true, attentionMask: mask);
        var pooled = RelativeL2(output.TextEmbeds ?? output.PooledOutput, golden.Outputs.F32(golden.Pooled));
        Assert.That(pooled, Is.LessThanOrEqualTo(golden.Strict), $"{golden.Pooled}: relative L2 {pooled:E2}");
        foreach (var (actual, reference) in new[] { (output.LastHiddenState, "last_hidden_state"), (output.HiddenStates[^2], "hidden_states_penultimate") })
        {
            var values = actual.ToArray<float>();
            var expected = golden.Outputs.F32(reference);
            float[] Part(float[] all, bool real) => all.Where((_, i) => IsReal(i) == real).ToArray();
            var realError = Reference.RelativeL2(Part(values, true), Part(expected, true));
            var paddedChange = Reference.RelativeL2(Part(values, false), Part(expected, false));
            Assert.That(realError, Is.LessThanOrEqualTo(golden.Strict), $"{reference} at real positions: relative L2 {realError:E2}");
            Assert.That(paddedChange, Is.GreaterThan(1e-3), $"{reference} at padded positions must change with the mask");
        }
    }

    /// <summary>transformers' eager <c>CLIPAttention</c> in fp64 on row-major [B, S, hidden] inputs: scaled
    /// scores plus the causal mask, plus the padding mask where given (each finfo(float32).min, added one
    /// after the other as transformers does), softmax, weighted values, out_proj.</summary>
    static double[] ReferenceAttention(float[] x, GoldenTensors weights, string prefix, int batch, int length, int hidden,
        int heads, long[]? mask)
    {
        double[] Project(string name, float[] input) =>
            Reference.Gemm(input, weights.F32($"{prefix}.{name}.weight"), weights.F32($"{prefix}.{name}.bias"), 1, batch * length, hidden, hidden, true);
        var (q, k, v) = (Project("q_proj", x), Project("k_proj", x), Project("v_proj", x));
        var headDim = hidden / heads;
        var scale = Math.Pow(headDim, -0.5);
        var attended = new float[batch * length * hidden];
        var scores = new double[length];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < length; i++)
        {
            for (int j = 0; j < length; j++)
            {
                double s = 0;
                for (int c = 0; c < headDim; c++)
                    s += q[(b * length + i) * hidden + h * headDim + c] * scale * k[(b * length + j) * hidden + h * headDim + c];
                if (j > i) s += float.MinValue;
                if (mask is not null && mask[b * length + j] == 0) s += float.MinValue;
                scores[j] = s;
            }
            var max = scores.Max();
            var weightsOf = scores.Select(s => Math.Exp(s - max)).ToArray();
            var sum = weightsOf.Sum();
            for (int c = 0; c < headDim; c++)
            {
                double value = 0;
                for (int j = 0; j < length; j++) value += weightsOf[j] / sum * v[(b * length + j) * hidden + h * headDim + c];
                attended[(b * length + i) * hidden + h * headDim + c] = (float)value;
            }
        }
        return Reference.Gemm(attended, weights.F32($"{prefix}.out_proj.weight"), weights.F32($"{prefix}.out_proj.bias"),
            1, batch * length, hidden, hidden, true);
    }

    [TestCaseSource(nameof(Cases))]
    public void AttentionMatchesTheRecordedActivationAndAnFp64ReferenceWithPadding(string name)
    {
        var golden = LoadCase(name);
        var debug = golden.Debug();
        var weights = golden.Model;
        var (batch, length, hidden, heads) = (golden.Batch, golden.Length, golden.Config.HiddenSize, golden.Config.NumAttentionHeads);
        const string prefix = "text_model.encoder.layers.0";
        var x = debug.F32($"{prefix}.layer_norm1");
        var recorded = debug.F32($"{prefix}.self_attn.0");
        // The fp64 reference is first checked against transformers' own activation.
        var unmasked = ReferenceAttention(x, weights, $"{prefix}.self_attn", batch, length, hidden, heads, mask: null);
        Assert.That(Reference.RelativeL2(recorded, unmasked), Is.LessThan(1e-6), "the reference reproduces transformers");

        // Row 0 left-padded (its first queries see only padded keys and, as in transformers, attend
        // uniformly to them), row 1 right-padded.
        var mask = new long[batch * length];
        for (int t = 0; t < length; t++)
        {
            mask[t] = t < 3 ? 0 : 1;
            for (int b = 1; b < batch; b++) mask[b * length + t] = t < 9 ? 1 : 0;
        }
        var masked = ReferenceAttention(x, weights, $"{prefix}.self_attn", batch, length, hidden, heads, mask);

        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var scope = new TensorScope();
        var input = Tensor.FromArray(context, x, batch, length, hidden);
        var attention = model.TextModel.Layers[0].SelfAttn;
        var plain = attention.Forward(input, ClipAttentionBias.Create(context, batch, length, null)).ToArray<float>();
        Assert.That(Reference.RelativeL2(plain, recorded), Is.LessThanOrEqualTo(golden.Strict), "causal only");
        var padded = attention.Forward(input, ClipAttentionBias.Create(context, batch, length, mask)).ToArray<float>();
        Assert.That(Reference.RelativeL2(padded, masked), Is.LessThanOrEqualTo(golden.Strict), "causal and padding");
        Assert.That(Reference.RelativeL2(padded, unmasked), Is.GreaterThan(1e-3), "the padding mask matters here");
    }

    // ---- MLP ----------------------------------------------------------------------------------

    [TestCaseSource(nameof(Cases))]
    public void MlpMatchesTheRecordedActivations(string name)
    {
        var golden = LoadCase(name);
        var debug = golden.Debug();
        var (batch, length, hidden) = (golden.Batch, golden.Length, golden.Config.HiddenSize);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        using var scope = new TensorScope();
        for (int i = 0; i < golden.Config.NumHiddenLayers; i++)
        {
            var prefix = $"text_model.encoder.layers.{i}";
            var input = Tensor.FromArray(context, debug.F32($"{prefix}.layer_norm2"), batch, length, hidden);
            var error = Reference.RelativeL2(model.TextModel.Layers[i].Mlp.Forward(input).ToArray<float>(), debug.F32($"{prefix}.mlp"));
            Assert.That(error, Is.LessThanOrEqualTo(golden.Strict), $"layer {i} ({golden.Config.HiddenAct}): relative L2 {error:E2}");
        }
    }

    [TestCase(ClipActivation.QuickGelu)]
    [TestCase(ClipActivation.GeluErf)]
    [TestCase(ClipActivation.GeluTanh)]
    public void MlpActivationsMatchAnFp64Reference(ClipActivation activation)
    {
        // Every activation on the same golden weights and recorded inputs, against fc2(act(fc1 x)) in fp64.
        var golden = LoadCase(ClipL);
        var debug = golden.Debug();
        var weights = golden.Model;
        var (rows, hidden, inner) = (golden.Batch * golden.Length, golden.Config.HiddenSize, golden.Config.IntermediateSize);
        const string prefix = "text_model.encoder.layers.0";
        var x = debug.F32($"{prefix}.layer_norm2");
        Func<double, double> act = activation switch
        {
            ClipActivation.QuickGelu => v => v / (1 + Math.Exp(-1.702 * v)),
            ClipActivation.GeluErf => Reference.GeluErf,
            _ => Reference.GeluTanh,
        };
        var fc1 = Reference.Gemm(x, weights.F32($"{prefix}.mlp.fc1.weight"), weights.F32($"{prefix}.mlp.fc1.bias"), 1, rows, inner, hidden, true, act);
        var expected = Reference.Gemm(Array.ConvertAll(fc1, v => (float)v), weights.F32($"{prefix}.mlp.fc2.weight"),
            weights.F32($"{prefix}.mlp.fc2.bias"), 1, rows, hidden, inner, true);

        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context, config: golden.Config with { HiddenAct = activation });
        using var scope = new TensorScope();
        var actual = model.TextModel.Layers[0].Mlp.Forward(Tensor.FromArray(context, x, golden.Batch, golden.Length, hidden)).ToArray<float>();
        Assert.That(Reference.RelativeL2(actual, expected), Is.LessThan(1e-6));
    }

    // ---- configuration ------------------------------------------------------------------------

    [TestCaseSource(nameof(Cases))]
    public void GoldenConfigIsReadAsWritten(string name)
    {
        var golden = LoadCase(name);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(golden.Folder, "config.json")));
        var root = json.RootElement;
        int Int(string key) => root.GetProperty(key).GetInt32();
        var config = golden.Config;
        Assert.That(config, Is.EqualTo(new ClipTextConfig
        {
            VocabSize = Int("vocab_size"), HiddenSize = Int("hidden_size"), IntermediateSize = Int("intermediate_size"),
            ProjectionDim = Int("projection_dim"), NumHiddenLayers = Int("num_hidden_layers"),
            NumAttentionHeads = Int("num_attention_heads"), MaxPositionEmbeddings = Int("max_position_embeddings"),
            HiddenAct = root.GetProperty("hidden_act").GetString() == "quick_gelu" ? ClipActivation.QuickGelu : ClipActivation.GeluErf,
            LayerNormEps = root.GetProperty("layer_norm_eps").GetDouble(),
            PadTokenId = Int("pad_token_id"), BosTokenId = Int("bos_token_id"), EosTokenId = Int("eos_token_id"),
        }));
        Assert.That(config.HiddenAct, Is.EqualTo(golden.WithProjection ? ClipActivation.GeluErf : ClipActivation.QuickGelu),
            "CLIP-L style uses quick_gelu, bigG style gelu");
        using var model = new ClipTextModel(config, golden.WithProjection);
        Assert.That(model.NamedParameters().Select(p => p.Path).Order(),
            Is.EqualTo(golden.Case.GetProperty("weight_names").EnumerateArray().Select(n => n.GetString()).Order()));
    }

    static ClipTextConfig Parse(string json)
    {
        using var document = JsonDocument.Parse(json);
        return ClipTextConfig.FromJson(document.RootElement);
    }

    [Test]
    public void MissingFieldsTakeTransformersDefaults()
    {
        Assert.That(Parse("""{"hidden_act": null}"""), Is.EqualTo(new ClipTextConfig
        {
            VocabSize = 49408, HiddenSize = 512, IntermediateSize = 2048, ProjectionDim = 512, NumHiddenLayers = 12,
            NumAttentionHeads = 8, MaxPositionEmbeddings = 77, HiddenAct = ClipActivation.QuickGelu, LayerNormEps = 1e-5,
            PadTokenId = 1, BosTokenId = 49406, EosTokenId = 49407,
        }));
        Assert.That(Parse("""{"hidden_act": "gelu_pytorch_tanh"}""").HiddenAct, Is.EqualTo(ClipActivation.GeluTanh));
    }

    [TestCase("""{"model_type": "clip"}""", XditStatus.Unsupported, "model_type \"clip\" is not supported")]
    [TestCase("""{"hidden_act": "relu"}""", XditStatus.Unsupported, "hidden_act \"relu\" is not supported")]
    [TestCase("""{"hidden_size": 30, "num_attention_heads": 4}""", XditStatus.InvalidArgument, "hidden_size = 30 is not divisible by num_attention_heads = 4")]
    [TestCase("""{"num_hidden_layers": 0}""", XditStatus.InvalidArgument, "num_hidden_layers = 0 is outside 1 ..")]
    // Found by the config fuzzing (ReliabilityTests): a billion layers used to be built before any weight was read.
    [TestCase("""{"num_hidden_layers": 1000000000}""", XditStatus.InvalidArgument, "num_hidden_layers = 1000000000 is outside 1 .. 1024")]
    [TestCase("""{"vocab_size": "49408"}""", XditStatus.InvalidArgument, "\"vocab_size\" is a string \"49408\", expected an integer")]
    [TestCase("""{"layer_norm_eps": -1}""", XditStatus.InvalidArgument, "layer_norm_eps = -1 must not be negative")]
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
        var golden = LoadCase(ClipL);
        var config = golden.Config;
        var layers = config.NumHiddenLayers;
        using var context = Contexts.Cpu();

        // One layer more than the checkpoint holds, an MLP width it does not have, and a projection it lacks.
        using var larger = new ClipTextModel(config with { NumHiddenLayers = layers + 1, IntermediateSize = config.IntermediateSize + 1 }, withProjection: true);
        var error = Assert.Throws<XDitException>(() => larger.LoadWeights(golden.Weights(), context, DType.F32))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith("the CLIP checkpoint does not match the model (ClipTextModel):"));
        Assert.That(error.Message, Does.Contain($"missing: text_model.encoder.layers.{layers}.").And.Contain("text_projection.weight"));
        Assert.That(error.Message, Does.Contain(
            $"text_model.encoder.layers.0.mlp.fc1.weight: [{config.IntermediateSize}, {config.HiddenSize}] in the CLIP checkpoint, " +
            $"[{config.IntermediateSize + 1}, {config.HiddenSize}] expected"));
        Assert.That(larger.NamedParameters().All(p => !p.Parameter.IsLoaded), "nothing is loaded from a mismatched checkpoint");

        using var smaller = new ClipTextModel(config with { NumHiddenLayers = layers - 1 });
        var unexpected = Assert.Throws<XDitException>(() => smaller.LoadWeights(golden.Weights(), context, DType.F32))!;
        Assert.That(unexpected.Message, Does.Contain($"unexpected: text_model.encoder.layers.{layers - 1}."));

        using var wrongDType = new ClipTextModel(config);
        Assert.That(Assert.Throws<XDitException>(() => wrongDType.LoadWeights(golden.Weights(), context, DType.I64))!.Message,
            Does.Contain("i64").And.Contain("f32, f16 or bf16"));
    }

    [Test]
    public void NamesTransformersSkipsAreSkipped()
    {
        // A full CLIPModel checkpoint (vision tower, visual projection, logit scale) written before
        // transformers 4.31 (position_ids buffer), read as the text model alone; with a projection
        // checkpoint, a plain CLIPTextModel drops text_projection as transformers does.
        var golden = LoadCase(ClipGProj);
        var expected = golden.Outputs.F32("last_hidden_state");
        var first = golden.Weights().Names.Order().First();
        var full = new ExtendedSource(golden.Weights(), new()
        {
            ["text_model.embeddings.position_ids"] = first,
            ["vision_model.encoder.layers.0.mlp.fc1.weight"] = first,
            ["visual_projection.weight"] = first,
            ["logit_scale"] = first,
        });
        using var context = Contexts.Cpu();
        foreach (var withProjection in new[] { true, false })
        {
            using var model = LoadModel(golden, context, source: full, withProjection: withProjection);
            using var output = model.Forward(golden.Ids, golden.Batch, context);
            Assert.That(RelativeL2(output.LastHiddenState, expected), Is.LessThanOrEqualTo(golden.Strict));
            Assert.That(output.TextEmbeds is not null, Is.EqualTo(withProjection));
        }
        using var plain = new ClipTextModel(golden.Config);
        var error = Assert.Throws<XDitException>(() =>
            plain.LoadWeights(new ExtendedSource(golden.Weights(), new() { ["text_model.pooler.weight"] = first }), context, DType.F32))!;
        Assert.That(error.Message, Does.Contain("1 unexpected: text_model.pooler.weight"));
    }

    // ---- invalid inputs -----------------------------------------------------------------------

    [Test]
    public void IdsOutsideTheVocabularyAreNamed()
    {
        var golden = LoadCase(ClipL);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        var vocab = golden.Config.VocabSize;
        foreach (var bad in new long[] { vocab, -1 })
        {
            var ids = (long[])golden.Ids.Clone();
            ids[golden.Length + 3] = bad;
            var error = Assert.Throws<XDitException>(() => model.Forward(ids, golden.Batch, context))!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(error.Message, Does.Contain($"token id {bad} at [1, 3]").And.Contain($"vocabulary of {vocab}"));
        }
        using var output = model.Forward(golden.Ids, golden.Batch, context);
        Assert.That(RelativeL2(output.PooledOutput, golden.Outputs.F32("pooler_output")), Is.LessThanOrEqualTo(golden.Strict),
            "the model still works after the errors");
    }

    [Test]
    public void MalformedInputsAreNamed()
    {
        var golden = LoadCase(ClipL);
        using var context = Contexts.Cpu();
        using var model = LoadModel(golden, context);
        var (ids, batch, length) = (golden.Ids, golden.Batch, golden.Length);
        string Message(long[] ids, int batch, long[]? mask = null, DeviceContext? on = null) =>
            Assert.Throws<XDitException>(() => model.Forward(ids, batch, on ?? context, attentionMask: mask))!.Message;

        Assert.That(Message(ids, ids.Length + 1), Does.Contain($"{ids.Length} ids do not form {ids.Length + 1}"));
        var positions = golden.Config.MaxPositionEmbeddings;
        Assert.That(Message(new long[positions + 1], 1),
            Does.Contain($"{positions + 1} tokens is longer than the {positions} positions of position_embedding"));
        Assert.That(Message(ids, batch, new long[ids.Length - 1]), Does.Contain($"{ids.Length - 1} values for ids [{batch}, {length}]"));
        var two = Enumerable.Repeat(1L, ids.Length).ToArray();
        two[length + 5] = 2;
        Assert.That(Message(ids, batch, two), Does.Contain("attention mask [1, 5] is 2"));
        using var other = Contexts.Cpu();
        Assert.That(Message(ids, batch, on: other), Does.Contain("another context"));
    }

    /// <summary>A checkpoint with extra names that read existing tensors (<c>alias → original</c>).</summary>
    sealed class ExtendedSource(ITensorSource inner, Dictionary<string, string> aliases) : ITensorSource
    {
        public IReadOnlyCollection<string> Names => inner.Names.Concat(aliases.Keys).ToList();

        public IReadOnlyList<long> Shape(string name) => inner.Shape(aliases.GetValueOrDefault(name, name));

        public Tensor Load(string name, DeviceContext context, DType dtype) => inner.Load(aliases.GetValueOrDefault(name, name), context, dtype);
    }
}
