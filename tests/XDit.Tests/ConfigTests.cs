using System.Text;
using System.Text.Json;
using XDit.Models.T5;
using XDit.Native;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>
/// JSON configs as Python writes them (non-finite floats as bare tokens, null for None), the typed
/// accessors and their errors; <c>model_index.json</c>; and a diffusers pipeline folder assembled from
/// the golden models (a sharded text encoder included).
/// </summary>
[TestFixture]
public class ConfigTests
{
    string _folder = null!;

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), $"xdit-config-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    static string DpmSolverCase => GoldenTensors.CaseFolder("sched_dpmsolver_pixart_10");

    // ---- JsonConfig -----------------------------------------------------------------------------

    [Test]
    public void SchedulerConfigWithMinusInfinityReadsAsCaseJsonSpellsIt()
    {
        var config = JsonConfig.Load(Path.Combine(DpmSolverCase, "scheduler_config.json"));
        Assert.That(config.Double("lambda_min_clipped", 0), Is.EqualTo(double.NegativeInfinity));
        Assert.That(config.Root.GetProperty("lambda_min_clipped").GetString(), Is.EqualTo("-Infinity"));

        // case.json (strict JSON, read here by System.Text.Json alone) holds the same configuration.
        using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(DpmSolverCase, "case.json")));
        var expected = caseJson.RootElement.GetProperty("scheduler_config");
        foreach (var property in expected.EnumerateObject())
            Assert.That(JsonElement.DeepEquals(config.Root.GetProperty(property.Name), property.Value), Is.True, property.Name);
        Assert.That(config.Keys.Except(expected.EnumerateObject().Select(p => p.Name)), Is.EquivalentTo(new[] { "_class_name", "_diffusers_version" }));
    }

    [Test]
    public void TypedAccessorsReadValuesNullsAndDefaults()
    {
        var config = JsonConfig.Load(Path.Combine(DpmSolverCase, "scheduler_config.json"));
        Assert.That(config.String("_class_name"), Is.EqualTo("DPMSolverMultistepScheduler"));
        Assert.That(config.Int("num_train_timesteps", 0), Is.EqualTo(1000));
        Assert.That(config.Int("solver_order", 0), Is.EqualTo(2));
        Assert.That(config.Double("beta_start", 0), Is.EqualTo(0.0001));
        Assert.That(config.Double("beta_end", 0), Is.EqualTo(0.02));
        Assert.That(config.Double("num_train_timesteps", 0), Is.EqualTo(1000.0), "an integer is a valid double");
        Assert.That(config.Bool("thresholding", true), Is.False);
        Assert.That(config.Bool("lower_order_final", false), Is.True);

        Assert.That(config.Has("variance_type"), Is.True);
        Assert.That(config.IsNull("variance_type"), Is.True);
        Assert.That(config.String("variance_type", "fixed_small"), Is.Null, "None stays None");
        Assert.That(config.IsNull("trained_betas"), Is.True);
        Assert.That(config.DoubleArray("trained_betas", [0.5]), Is.EqualTo(new[] { 0.5 }), "a null array takes the default");
        Assert.That(config.IsNull("solver_order"), Is.False);

        Assert.That(config.Has("shift"), Is.False);
        Assert.That(config.IsNull("shift"), Is.False);
        Assert.That(config.Int("shift", 7), Is.EqualTo(7));
        Assert.That(config.Double("shift", 3.0), Is.EqualTo(3.0));
        Assert.That(config.Bool("shift", true), Is.True);
        Assert.That(config.String("shift", "d"), Is.EqualTo("d"));
        Assert.That(config.IntArray("shift"), Is.Null);

        var pixart = JsonConfig.Load(Path.Combine(GoldenTensors.CaseFolder("pixart_alpha"), "config.json"));
        Assert.That(pixart.IsNull("interpolation_scale"), Is.True);
        Assert.That(pixart.Int("interpolation_scale", 4), Is.EqualTo(4), "a null int takes the default");
        Assert.That(pixart.Double("norm_eps", 0), Is.EqualTo(1e-6));
        Assert.That(pixart.Int("sample_size", 0), Is.EqualTo(8));
    }

    [Test]
    public void EveryGoldenConfigReadsLikeStrictJson()
    {
        var root = Path.GetDirectoryName(GoldenTensors.CaseFolder("pixart_alpha"))!;
        var files = Directory.EnumerateFiles(root, "*.json", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) is "config.json" or "scheduler_config.json")
            .ToArray();
        Assert.That(files, Has.Length.GreaterThan(20));
        var pythonOnly = 0;
        foreach (var file in files)
        {
            var config = JsonConfig.Load(file);
            var text = File.ReadAllText(file);
            if (text.Contains("Infinity") || text.Contains("NaN"))
            {
                pythonOnly++;
                Assert.That(config.Double("lambda_min_clipped", 0), Is.EqualTo(double.NegativeInfinity), file);
                continue;
            }
            using var strict = JsonDocument.Parse(text);
            Assert.That(JsonElement.DeepEquals(config.Root, strict.RootElement), Is.True, file);
        }
        Assert.That(pythonOnly, Is.EqualTo(2), "the two DPM-Solver scheduler configs");
    }

    [Test]
    public void PythonNonFiniteTokensBecomeStringsOnlyOutsideStrings()
    {
        const string json = """
            {"a": NaN, "b": [Infinity, -Infinity, 1.5, -2], "c": "NaN and -Infinity stay text",
             "d": "quote \" Infinity", "e": "back\\", "f": NaN, "g": {"h": -Infinity}, "Infinity": 1}
            """;
        var config = JsonConfig.Parse(json, "inline.json");
        Assert.That(config.Double("a", 0), Is.NaN);
        Assert.That(config.DoubleArray("b"), Is.EqualTo(new[] { double.PositiveInfinity, double.NegativeInfinity, 1.5, -2 }));
        Assert.That(config.String("c"), Is.EqualTo("NaN and -Infinity stay text"));
        Assert.That(config.String("d"), Is.EqualTo("quote \" Infinity"));
        Assert.That(config.String("e"), Is.EqualTo("back\\"));
        Assert.That(config.Double("f", 0), Is.NaN, "a token after an escaped backslash ending a string");
        Assert.That(config.Root.GetProperty("g").GetProperty("h").GetString(), Is.EqualTo("-Infinity"));
        Assert.That(config.Int("Infinity", 0), Is.EqualTo(1), "a key spelled like a token is a key");
        Assert.That(config.Root.GetProperty("a").GetString(), Is.EqualTo("NaN"));

        foreach (var bad in new[] { """{"a": NaNa}""", """{"a": Infinityy}""", """{"a": -Inf}""", """{"a": nan}""", """{"a": +Infinity}""" })
        {
            var error = Assert.Throws<XDitException>(() => JsonConfig.Parse(bad, "bad.json"))!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument), bad);
            Assert.That(error.Message, Does.StartWith("bad.json: is not valid JSON"), bad);
        }
    }

    [Test]
    public void WrongTypesNameTheFileAndKey()
    {
        var config = JsonConfig.Parse("""
            {"n": "2", "f": 2.5, "big": 3000000000, "b": 1, "s": 3, "ints": [1, "x"], "strs": ["a", null], "o": {}, "whole": 3.0, "e": 1e3,
             "word": "fast"}
            """, "cfg.json");
        void Fails(Action read, string key, string expected)
        {
            var error = Assert.Throws<XDitException>(() => read())!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(error.Message, Does.StartWith("cfg.json: ").And.Contain($"\"{key}\"").And.Contain(expected));
        }
        Fails(() => config.Int("n", 0), "n", "is a string \"2\", expected an integer");
        Fails(() => config.Int("f", 0), "f", "the number 2.5, expected an integer");
        Fails(() => config.Int("big", 0), "big", "expected an integer");
        Fails(() => config.Bool("b", false), "b", "expected true or false");
        Fails(() => config.String("s"), "s", "expected a string");
        Fails(() => config.IntArray("ints"), "ints[1]", "expected an integer");
        Fails(() => config.StringArray("strs"), "strs[1]", "expected a string");
        Fails(() => config.StringArray("n"), "n", "expected an array");
        Fails(() => config.Double("o", 0), "o", "is an object, expected a number");
        Fails(() => config.Double("word", 0), "word", "expected a number");
        Assert.That(config.Int("whole", 0), Is.EqualTo(3));
        Assert.That(config.Int("e", 0), Is.EqualTo(1000));
        Assert.That(config.Double("f", 0), Is.EqualTo(2.5));
    }

    [Test]
    public void MalformedFilesAreErrorsNamingTheFile()
    {
        Assert.That(Assert.Throws<XDitException>(() => JsonConfig.Parse("""{"a": 1, "a": 2}""", "dup.json"))!.Message,
            Does.StartWith("dup.json: ").And.Contain("'a'"));
        Assert.That(Assert.Throws<XDitException>(() => JsonConfig.Parse("[1, 2]", "array.json"))!.Message,
            Does.StartWith("array.json: ").And.Contain("expected a JSON object"));
        Assert.That(Assert.Throws<XDitException>(() => JsonConfig.Parse("{\"a\": ", "cut.json"))!.Message,
            Does.StartWith("cut.json: is not valid JSON"));

        var missing = Path.Combine(_folder, "config.json");
        Assert.That(Assert.Throws<XDitException>(() => JsonConfig.Load(missing))!.Message, Does.StartWith(missing).And.Contain("no such file"));

        File.WriteAllBytes(missing, [(byte)'{', (byte)'"', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}']);
        Assert.That(Assert.Throws<XDitException>(() => JsonConfig.Load(missing))!.Message, Does.StartWith(missing).And.Contain("not UTF-8"));

        File.WriteAllText(missing, "{\"name\": \"ok\"}", new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));
        Assert.That(JsonConfig.Load(missing).String("name"), Is.EqualTo("ok"), "a byte-order mark is allowed");
    }

    // ---- model_index.json -----------------------------------------------------------------------

    const string PixArtModelIndex = """
        {
          "_class_name": "PixArtAlphaPipeline",
          "_diffusers_version": "0.32.2",
          "_name_or_path": "PixArt-alpha/PixArt-XL-2-1024-MS",
          "image_encoder": [null, null],
          "requires_safety_checker": false,
          "scheduler": ["diffusers", "DPMSolverMultistepScheduler"],
          "text_encoder": ["transformers", "T5EncoderModel"],
          "tokenizer": ["transformers", "T5Tokenizer"],
          "transformer": ["diffusers", "PixArtTransformer2DModel"],
          "vae": ["diffusers", "AutoencoderKL"]
        }
        """;

    [Test]
    public void ModelIndexListsComponentsAndAbsentOnes()
    {
        var path = Path.Combine(_folder, "model_index.json");
        File.WriteAllText(path, PixArtModelIndex);
        var index = ModelIndex.Load(path);
        Assert.That(index.Path, Is.EqualTo(path));
        Assert.That(index.ClassName, Is.EqualTo("PixArtAlphaPipeline"));
        Assert.That(index.DiffusersVersion, Is.EqualTo("0.32.2"));
        Assert.That(index.Components.Keys, Is.EquivalentTo(new[] { "scheduler", "text_encoder", "tokenizer", "transformer", "vae" }));
        Assert.That(index.Components["text_encoder"], Is.EqualTo(new ModelComponent("text_encoder", "transformers", "T5EncoderModel")));
        Assert.That(index.Components["transformer"], Is.EqualTo(new ModelComponent("transformer", "diffusers", "PixArtTransformer2DModel")));
        Assert.That(index.AbsentComponents, Is.EqualTo(new[] { "image_encoder" }));
        Assert.That(index.Config.Bool("requires_safety_checker", true), Is.False);
        Assert.That(index.Config.String("_name_or_path"), Is.EqualTo("PixArt-alpha/PixArt-XL-2-1024-MS"));
    }

    [TestCase("""{"_class_name": "P", "vae": ["diffusers"]}""", "component \"vae\" is [\"diffusers\"]")]
    [TestCase("""{"_class_name": "P", "vae": [null, "AutoencoderKL"]}""", "component \"vae\"")]
    [TestCase("""{"_class_name": "P", "vae": ["diffusers", 3]}""", "component \"vae\"")]
    [TestCase("""{"vae": ["diffusers", "AutoencoderKL"]}""", "no \"_class_name\"")]
    [TestCase("""{"_class_name": 5}""", "\"_class_name\" is the number 5")]
    public void MalformedModelIndexIsAnError(string json, string phrase)
    {
        var path = Path.Combine(_folder, "model_index.json");
        File.WriteAllText(path, json);
        var error = Assert.Throws<XDitException>(() => ModelIndex.Load(path))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(path).And.Contain(phrase));
    }

    // ---- diffusers folders ----------------------------------------------------------------------

    [Test]
    public void DiffusersFolderFindsConfigsAndWeightsOfItsComponents()
    {
        var pixart = GoldenTensors.CaseFolder("pixart_alpha");
        var t5 = GoldenTensors.CaseFolder(Path.Combine("text", "t5_encoder"));
        File.WriteAllText(Path.Combine(_folder, "model_index.json"), PixArtModelIndex);
        var transformer = Directory.CreateDirectory(Path.Combine(_folder, "transformer")).FullName;
        File.Copy(Path.Combine(pixart, "config.json"), Path.Combine(transformer, "config.json"));
        File.Copy(Path.Combine(pixart, "diffusion_pytorch_model.safetensors"), Path.Combine(transformer, "diffusion_pytorch_model.safetensors"));
        var scheduler = Directory.CreateDirectory(Path.Combine(_folder, "scheduler")).FullName;
        File.Copy(Path.Combine(DpmSolverCase, "scheduler_config.json"), Path.Combine(scheduler, "scheduler_config.json"));
        var textEncoder = Directory.CreateDirectory(Path.Combine(_folder, "text_encoder")).FullName;
        File.Copy(Path.Combine(t5, "config.json"), Path.Combine(textEncoder, "config.json"));
        Directory.CreateDirectory(Path.Combine(_folder, "tokenizer"));

        // The text encoder is stored sharded, as large T5 checkpoints are.
        using var context = Contexts.Cpu();
        var t5Golden = GoldenTensors.Load(Path.Combine(t5, "model.safetensors"));
        var tensors = new List<Tensor>();
        try
        {
            var sharded = new ShardedSafetensorsWriter("model", 32 << 10);
            using (var source = SafetensorsFile.Open(Path.Combine(t5, "model.safetensors")))
                foreach (var name in source.Names)
                {
                    tensors.Add(source.Load(name, context));
                    sharded.Add(name, tensors[^1]);
                }
            Assert.That(sharded.Save(textEncoder), Has.Count.GreaterThan(3));
        }
        finally
        {
            foreach (var t in tensors) t.Dispose();
        }

        var folder = DiffusersFolder.Open(_folder);
        Assert.That(folder.Root, Is.EqualTo(_folder));
        Assert.That(folder.Index.ClassName, Is.EqualTo("PixArtAlphaPipeline"));
        Assert.That(folder.Component("transformer"), Is.EqualTo(transformer));
        Assert.That(folder.Config("transformer").String("_class_name"), Is.EqualTo("PixArtTransformer2DModel"));
        Assert.That(folder.Config("scheduler").Double("lambda_min_clipped", 0), Is.EqualTo(double.NegativeInfinity));
        Assert.That(folder.Config("text_encoder").String("model_type"), Is.EqualTo("t5"));

        var pixartGolden = GoldenTensors.Load(Path.Combine(pixart, "diffusion_pytorch_model.safetensors"));
        using (var weights = folder.OpenWeights("transformer"))
        {
            Assert.That(weights.IsSharded, Is.False);
            Assert.That(weights.Names, Is.EqualTo(pixartGolden.Names.Order(StringComparer.Ordinal)));
            using var projection = weights.Load("proj_out.weight", context);
            Assert.That(projection.ToArray<float>(), Is.EqualTo(pixartGolden.F32("proj_out.weight")));
        }
        using (var weights = folder.OpenWeights("text_encoder"))
        {
            Assert.That(weights.IsSharded, Is.True);
            Assert.That(weights.Path, Is.EqualTo(Path.Combine(textEncoder, "model.safetensors.index.json")));
            Assert.That(weights.Names, Is.EqualTo(t5Golden.Names.Order(StringComparer.Ordinal)));
            foreach (var name in weights.Names)
            {
                Assert.That(weights.Info(name).Shape, Is.EqualTo(t5Golden.Shape(name)), name);
                using var t = weights.Load(name, context);
                Assert.That(t.ToArray<float>(), Is.EqualTo(t5Golden.F32(name)), name);
            }
        }

        // The sharded checkpoint feeds a model directly: the T5 encoder it loads matches transformers.
        using (var weights = folder.OpenWeights("text_encoder"))
        using (var model = new T5EncoderModel(T5Config.FromJson(folder.Config("text_encoder").Root)))
        {
            model.LoadWeights(weights, context, DType.F32);
            var inputs = GoldenTensors.Load(Path.Combine(t5, "inputs.safetensors"));
            var outputs = GoldenTensors.Load(Path.Combine(t5, "outputs.safetensors"));
            using var caseJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(t5, "case.json")));
            var call = caseJson.RootElement.GetProperty("calls").EnumerateArray()
                .First(c => !c.GetProperty("kwargs").TryGetProperty("attention_mask", out _));
            var output = call.GetProperty("outputs").EnumerateObject().First().Name;
            using var hidden = model.Forward(inputs.I64("input_ids"), null, (int)inputs.Shape("input_ids")[0], context);
            Assert.That(hidden.Shape.ToArray(), Is.EqualTo(outputs.Shape(output)));
            Assert.That(Reference.RelativeL2(hidden.ToArray<float>(), outputs.F32(output)),
                Is.LessThanOrEqualTo(caseJson.RootElement.GetProperty("tolerance").GetProperty("strict_value").GetDouble()));
        }

        Assert.That(Assert.Throws<XDitException>(() => folder.Component("vae"))!.Message,
            Does.Contain(Path.Combine(_folder, "vae")).And.Contain("missing"));
        Assert.That(Assert.Throws<XDitException>(() => folder.Component("image_encoder"))!.Message, Does.Contain("absent"));
        Assert.That(Assert.Throws<XDitException>(() => folder.Component("unet"))!.Message,
            Does.Contain("\"unet\"").And.Contain("scheduler, text_encoder, tokenizer, transformer, vae"));
        Assert.That(Assert.Throws<XDitException>(() => folder.Config("tokenizer"))!.Message,
            Does.Contain("neither config.json nor scheduler_config.json"));
        Assert.That(Assert.Throws<XDitException>(() => folder.OpenWeights("scheduler"))!.Message,
            Does.Contain("diffusion_pytorch_model.safetensors nor diffusion_pytorch_model.safetensors.index.json"));
    }

    [Test]
    public void FolderWithoutModelIndexIsAnError()
    {
        var error = Assert.Throws<XDitException>(() => DiffusersFolder.Open(_folder))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(_folder).And.Contain("model_index.json"));
    }
}
