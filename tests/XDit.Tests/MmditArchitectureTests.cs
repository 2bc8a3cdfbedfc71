using System.Text.Json;
using XDit.Models.Clip;
using XDit.Models.Flux;
using XDit.Models.SD3;
using XDit.Models.T5;
using XDit.Models.Vae;
using XDit.Nn;
using XDit.Pipelines;
using XDit.Schedulers;
using XDit.Text;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>The SD3 and Flux architectures written as diffusers folders with random weights: every
/// component the pipeline class lists is there, its config reads into the engine's config classes and
/// agrees with the others, its checkpoint holds exactly the model's parameters (the large ones sharded
/// with an index), and the tokenizers load and encode. Also the configurations of the named architectures
/// against the released checkpoints' values, and the shape the tiny test pipelines must have.</summary>
[TestFixture]
public class MmditArchitectureTests
{
    /// <summary>Small enough that the reduced transformers and T5s need several shards.</summary>
    const long TinyShardBytes = 64 << 10;

    const string Prompt = "the photo of an orange cat sitting on a red mat, 4k!";

    static readonly Dictionary<string, (string Library, string Class)> SD3Components = new()
    {
        ["scheduler"] = ("diffusers", "FlowMatchEulerDiscreteScheduler"),
        ["text_encoder"] = ("transformers", "CLIPTextModelWithProjection"),
        ["text_encoder_2"] = ("transformers", "CLIPTextModelWithProjection"),
        ["text_encoder_3"] = ("transformers", "T5EncoderModel"),
        ["tokenizer"] = ("transformers", "CLIPTokenizer"),
        ["tokenizer_2"] = ("transformers", "CLIPTokenizer"),
        ["tokenizer_3"] = ("transformers", "T5TokenizerFast"),
        ["transformer"] = ("diffusers", "SD3Transformer2DModel"),
        ["vae"] = ("diffusers", "AutoencoderKL"),
    };

    static readonly Dictionary<string, (string Library, string Class)> FluxComponents = new()
    {
        ["scheduler"] = ("diffusers", "FlowMatchEulerDiscreteScheduler"),
        ["text_encoder"] = ("transformers", "CLIPTextModel"),
        ["text_encoder_2"] = ("transformers", "T5EncoderModel"),
        ["tokenizer"] = ("transformers", "CLIPTokenizer"),
        ["tokenizer_2"] = ("transformers", "T5TokenizerFast"),
        ["transformer"] = ("diffusers", "FluxTransformer2DModel"),
        ["vae"] = ("diffusers", "AutoencoderKL"),
    };

    [Test]
    public void SD3FoldersLoadIntoTheEngine([Values("tiny-sd3", "sd3-medium")] string name)
    {
        var real = name != "tiny-sd3";
        var architecture = real ? SD3Architecture.Get(name).Reduced(factor: 16, layers: 2) : SD3Architecture.Get(name);
        // f16 for the tiny one: everything but T5 (bf16) and the VAE (f32) is stored in it.
        var dtype = real ? DType.BF16 : DType.F16;
        WithFolder(name, root =>
        {
            architecture.WriteRandomFolder(root, seed: 11, dtype, real ? TinyShardBytes : 2L << 30);
            var folder = DiffusersFolder.Open(root);
            AssertComponents(folder, "StableDiffusion3Pipeline", SD3Components);

            var transformer = SD3Config.FromJson(folder.Config("transformer").Root);
            var clipL = ClipTextConfig.FromJson(folder.Config("text_encoder").Root);
            var clipG = ClipTextConfig.FromJson(folder.Config("text_encoder_2").Root);
            var t5 = T5Config.FromJson(folder.Config("text_encoder_3").Root);
            var vae = AutoencoderKLConfig.FromJson(folder.Config("vae").Root);
            // The SD3 pipeline pads CLIP-L | CLIP-G to T5's width and pools them side by side.
            Assert.That(transformer.JointAttentionDim, Is.EqualTo(t5.DModel));
            Assert.That(clipL.HiddenSize + clipG.HiddenSize, Is.LessThanOrEqualTo(t5.DModel));
            Assert.That(transformer.PooledProjectionDim, Is.EqualTo(clipL.ProjectionDim + clipG.ProjectionDim));
            Assert.That(transformer.InChannels, Is.EqualTo(vae.LatentChannels));
            AssertFlowVae(vae, scaling: 1.5305, shift: 0.0609);
            var scheduler = FlowMatchEulerScheduler.FromConfig(folder.Config("scheduler").Root).Options;
            Assert.That((scheduler.Shift, scheduler.UseDynamicShifting), Is.EqualTo((3.0, false)));

            using var context = Contexts.Cpu();
            using (var model = new SD3Transformer2DModel(transformer))
                LoadBack(folder, "transformer", model, sharded: real, dtype, c => WeightLoader.Load(model, c, context, dtype));
            foreach (var (component, config) in new[] { ("text_encoder", clipL), ("text_encoder_2", clipG) })
            {
                using var clip = new ClipTextModel(config, withProjection: true);
                LoadBack(folder, component, clip, sharded: false, dtype, c => clip.LoadWeights(c, context, dtype));
            }
            using (var encoder = new T5EncoderModel(t5))
                LoadBack(folder, "text_encoder_3", encoder, sharded: real, DType.BF16, c => encoder.LoadWeights(c, context, DType.BF16));
            using (var model = new AutoencoderKL(vae))
                LoadBack(folder, "vae", model, sharded: false, DType.F32, c => WeightLoader.Load(model, c, context, DType.F32));
            AssertT5EmbeddingStoredOnce(folder, "text_encoder_3");

            AssertClipTokenizer(folder.Component("tokenizer"), clipL, padsWithEos: true);
            AssertClipTokenizer(folder.Component("tokenizer_2"), clipG, padsWithEos: false);
            AssertT5Tokenizer(folder.Component("tokenizer_3"), t5, architecture.MaxSequenceLength);
        });
    }

    [Test]
    public void FluxFoldersLoadIntoTheEngine([Values("tiny-flux", "flux-dev", "flux-schnell")] string name)
    {
        var real = name != "tiny-flux";
        var architecture = real ? FluxArchitecture.Get(name).Reduced(factor: 16, layers: 2) : FluxArchitecture.Get(name);
        var dtype = real ? DType.BF16 : DType.F32;
        WithFolder(name, root =>
        {
            architecture.WriteRandomFolder(root, seed: 12, dtype, real ? TinyShardBytes : 2L << 30);
            var folder = DiffusersFolder.Open(root);
            AssertComponents(folder, "FluxPipeline", FluxComponents);

            var transformer = FluxConfig.FromJson(folder.Config("transformer").Root);
            var clip = ClipTextConfig.FromJson(folder.Config("text_encoder").Root);
            var t5 = T5Config.FromJson(folder.Config("text_encoder_2").Root);
            var vae = AutoencoderKLConfig.FromJson(folder.Config("vae").Root);
            // T5's hidden states are the text tokens, CLIP's pooled output the pooled projection, and the
            // pipeline packs 2×2 patches of the latent channels into one token.
            Assert.That(transformer.JointAttentionDim, Is.EqualTo(t5.DModel));
            Assert.That(transformer.PooledProjectionDim, Is.EqualTo(clip.HiddenSize));
            Assert.That(transformer.InChannels, Is.EqualTo(4 * vae.LatentChannels));
            Assert.That(transformer.GuidanceEmbeds, Is.EqualTo(name != "flux-schnell"));
            AssertFlowVae(vae, scaling: 0.3611, shift: 0.1159);
            var scheduler = FlowMatchEulerScheduler.FromConfig(folder.Config("scheduler").Root).Options;
            if (name == "flux-schnell")
                Assert.That((scheduler.Shift, scheduler.UseDynamicShifting), Is.EqualTo((1.0, false)), "schnell's sigmas are unshifted");
            else
                Assert.That((scheduler.UseDynamicShifting, scheduler.BaseShift, scheduler.MaxShift, scheduler.BaseImageSeqLen, scheduler.MaxImageSeqLen),
                    Is.EqualTo((true, 0.5, 1.15, 256, 4096)));

            using var context = Contexts.Cpu();
            using (var model = new FluxTransformer2DModel(transformer))
                LoadBack(folder, "transformer", model, sharded: real, dtype, c => WeightLoader.Load(model, c, context, dtype));
            using (var encoder = new ClipTextModel(clip))
            {
                LoadBack(folder, "text_encoder", encoder, sharded: false, dtype, c => encoder.LoadWeights(c, context, dtype));
                using var checkpoint = folder.OpenWeights("text_encoder");
                Assert.That(checkpoint.Contains("text_projection.weight"), Is.False, "Flux's CLIP has no projection");
            }
            using (var encoder = new T5EncoderModel(t5))
                LoadBack(folder, "text_encoder_2", encoder, sharded: real, dtype, c => encoder.LoadWeights(c, context, dtype));
            using (var model = new AutoencoderKL(vae))
                LoadBack(folder, "vae", model, sharded: false, DType.F32, c => WeightLoader.Load(model, c, context, DType.F32));
            AssertT5EmbeddingStoredOnce(folder, "text_encoder_2");

            AssertClipTokenizer(folder.Component("tokenizer"), clip, padsWithEos: true);
            AssertT5Tokenizer(folder.Component("tokenizer_2"), t5, architecture.MaxSequenceLength);
        });
    }

    [Test]
    public void SD3MediumHasTheReleasedConfiguration()
    {
        var medium = SD3Architecture.Get("sd3-medium");
        var transformer = SD3Config.FromJson(RandomFolderWriter.ToElement(medium.Transformer));
        Assert.That(new[] { transformer.NumLayers, transformer.NumAttentionHeads, transformer.AttentionHeadDim, transformer.CaptionProjectionDim },
            Is.EqualTo(new[] { 24, 24, 64, 1536 }));
        Assert.That(new[] { transformer.PatchSize, transformer.InChannels, transformer.OutChannels, transformer.JointAttentionDim },
            Is.EqualTo(new[] { 2, 16, 16, 4096 }));
        Assert.That(new[] { transformer.PooledProjectionDim, transformer.PosEmbedMaxSize, transformer.SampleSize }, Is.EqualTo(new[] { 2048, 192, 128 }));
        Assert.That((transformer.QkRmsNorm, transformer.DualAttentionLayers.Count), Is.EqualTo((false, 0)), "SD3.0, not 3.5");
        AssertClip(ClipTextConfig.FromJson(RandomFolderWriter.ToElement(medium.TextEncoder)), 768, 12, 12, 3072, ClipActivation.QuickGelu, 768);
        AssertClip(ClipTextConfig.FromJson(RandomFolderWriter.ToElement(medium.TextEncoder2)), 1280, 32, 20, 5120, ClipActivation.GeluErf, 1280);
        AssertT5Xxl(T5Config.FromJson(RandomFolderWriter.ToElement(medium.TextEncoder3)));
        AssertReleasedVae(AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(medium.Vae)), scaling: 1.5305, shift: 0.0609);
        Assert.That((medium.MaxSequenceLength, medium.DefaultSteps, medium.DefaultGuidanceScale, medium.DefaultImageSize),
            Is.EqualTo((256, 28, 7.0, 1024)));
    }

    [Test]
    public void FluxReleasesHaveTheirConfigurations([Values("flux-dev", "flux-schnell")] string name)
    {
        var flux = FluxArchitecture.Get(name);
        var dev = name == "flux-dev";
        var transformer = FluxConfig.FromJson(RandomFolderWriter.ToElement(flux.Transformer));
        Assert.That(new[] { transformer.NumLayers, transformer.NumSingleLayers, transformer.NumAttentionHeads, transformer.AttentionHeadDim },
            Is.EqualTo(new[] { 19, 38, 24, 128 }));
        Assert.That(new[] { transformer.InChannels, transformer.OutChannels, transformer.JointAttentionDim, transformer.PooledProjectionDim },
            Is.EqualTo(new[] { 64, 64, 4096, 768 }));
        Assert.That(transformer.AxesDimsRope, Is.EqualTo(new[] { 16, 56, 56 }));
        Assert.That((transformer.GuidanceEmbeds, flux.GuidanceEmbeds), Is.EqualTo((dev, dev)));
        var clip = ClipTextConfig.FromJson(RandomFolderWriter.ToElement(flux.TextEncoder));
        AssertClip(clip, 768, 12, 12, 3072, ClipActivation.QuickGelu, 768);
        Assert.That(flux.TextEncoder["architectures"]![0]!.GetValue<string>(), Is.EqualTo("CLIPTextModel"));
        AssertT5Xxl(T5Config.FromJson(RandomFolderWriter.ToElement(flux.TextEncoder2)));
        AssertReleasedVae(AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(flux.Vae)), scaling: 0.3611, shift: 0.1159);
        Assert.That((flux.MaxSequenceLength, flux.DefaultSteps, flux.DefaultGuidanceScale, flux.DefaultImageSize),
            Is.EqualTo(dev ? (512, 28, 3.5, 1024) : (256, 4, 0.0, 1024)));
    }

    [Test]
    public void TinyPipelinesAreShapedForEveryMeshUpToEightRanks()
    {
        var sd3 = SD3Architecture.Get("tiny-sd3");
        var flux = FluxArchitecture.Get("tiny-flux");
        var sd3Config = SD3Config.FromJson(RandomFolderWriter.ToElement(sd3.Transformer));
        var fluxConfig = FluxConfig.FromJson(RandomFolderWriter.ToElement(flux.Transformer));
        Assert.That((sd3Config.NumAttentionHeads, sd3Config.AttentionHeadDim), Is.EqualTo((4, 16)));
        Assert.That((fluxConfig.NumAttentionHeads, fluxConfig.AttentionHeadDim), Is.EqualTo((4, 16)));
        Assert.That(sd3Config.NumLayers, Is.GreaterThanOrEqualTo(8));
        Assert.That(fluxConfig.NumLayers + fluxConfig.NumSingleLayers, Is.GreaterThanOrEqualTo(8));
        foreach (var (maxSequenceLength, imageSize, vae) in new[] { (sd3.MaxSequenceLength, sd3.DefaultImageSize, sd3.Vae), (flux.MaxSequenceLength, flux.DefaultImageSize, flux.Vae) })
        {
            Assert.That(maxSequenceLength % 4, Is.Not.Zero, "a text length that does not divide among 4 ranks");
            Assert.That(imageSize, Is.EqualTo(128));
            var config = AutoencoderKLConfig.FromJson(RandomFolderWriter.ToElement(vae));
            Assert.That((config.ScaleFactor, config.LatentChannels), Is.EqualTo((8, 16)));
        }
        // The default image's patch grid fits SD3's stored position table.
        Assert.That(sd3.DefaultImageSize / 8 / sd3Config.PatchSize, Is.LessThanOrEqualTo(sd3Config.PosEmbedMaxSize));
    }

    [Test]
    public void UnknownNamesAreRejected()
    {
        Assert.That(Assert.Throws<XDitException>(() => SD3Architecture.Get("sd3-large"))!.Message, Does.Contain("tiny-sd3"));
        Assert.That(Assert.Throws<XDitException>(() => FluxArchitecture.Get("flux-pro"))!.Message, Does.Contain("flux-schnell"));
    }

    [Test]
    public void ClipVocabularyWriterRejectsWhatCannotBeWritten()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-clip-vocab").FullName;
        try
        {
            Assert.Throws<XDitException>(() => ClipVocabularyWriter.WriteFolder(folder, ClipVocabularyWriter.MinimumVocabSize - 1, "!"));
            Assert.Throws<XDitException>(() => ClipVocabularyWriter.WriteFolder(folder, 49408, "<pad>"));
            ClipVocabularyWriter.WriteFolder(folder, 49408, "!");
            var tokenizer = ClipTokenizer.FromFolder(folder);
            // As the real bigG tokenizer: "!" is an added token of id 0, so a literal one is split off.
            Assert.That((tokenizer.BosId, tokenizer.EosId, tokenizer.PadId), Is.EqualTo((49406, 49407, 0)));
            Assert.That(tokenizer.Encode("wow!"), Does.Contain(0L));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

        static void WithFolder(string name, Action<string> test)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-" + name).FullName;
        try
        {
            test(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    static void AssertComponents(DiffusersFolder folder, string pipelineClass, Dictionary<string, (string Library, string Class)> expected)
    {
        Assert.That(folder.Index.ClassName, Is.EqualTo(pipelineClass));
        Assert.That(folder.Index.Components.ToDictionary(c => c.Key, c => (c.Value.Library, c.Value.ClassName)), Is.EquivalentTo(expected));
        foreach (var component in expected.Keys) Assert.That(Directory.Exists(folder.Component(component)), component);
    }

    /// <summary>The component's checkpoint holds exactly the model's parameters, name by name and shape by
    /// shape, in <paramref name="stored"/>, is sharded or not as expected, and loads through
    /// <paramref name="load"/>.</summary>
    static void LoadBack(DiffusersFolder folder, string component, Module model, bool sharded, DType stored, Action<Checkpoint> load)
    {
        using var checkpoint = folder.OpenWeights(component);
        var expected = model.NamedParameters().ToDictionary(p => p.Path, p => p.Parameter.Shape.ToArray());
        Assert.That(checkpoint.Names, Is.EquivalentTo(expected.Keys), component + ": tensor names");
        foreach (var (name, shape) in expected) Assert.That(checkpoint.Shape(name), Is.EqualTo(shape), $"{component}: {name}");
        Assert.That(checkpoint.Names.Select(n => checkpoint.Info(n).DType.EngineDType()).Distinct(), Is.EqualTo(new DType?[] { stored }),
            component + " stored dtype");
        Assert.That(checkpoint.IsSharded, Is.EqualTo(sharded), component + " sharded");
        if (sharded)
        {
            var baseName = Path.GetFileName(checkpoint.Path).Replace(".safetensors.index.json", "");
            using var index = JsonDocument.Parse(File.ReadAllText(checkpoint.Path));
            var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            Assert.That(map.Keys, Is.EquivalentTo(expected.Keys), component + ": the index lists every tensor");
            var shards = map.Values.Distinct().ToList();
            Assert.That(shards, Has.Count.GreaterThan(1));
            Assert.That(shards, Is.EquivalentTo(Enumerable.Range(1, shards.Count).Select(i => $"{baseName}-{i:D5}-of-{shards.Count:D5}.safetensors")));
        }
        load(checkpoint);
        Assert.That(model.NamedParameters().All(p => p.Parameter.IsLoaded), component + " fully loaded");
    }

    static void AssertT5EmbeddingStoredOnce(DiffusersFolder folder, string component)
    {
        using var checkpoint = folder.OpenWeights(component);
        Assert.That(checkpoint.Names, Does.Contain("shared.weight").And.Not.Contain("encoder.embed_tokens.weight"));
    }

    static void AssertFlowVae(AutoencoderKLConfig vae, double scaling, double shift)
    {
        Assert.That((vae.LatentChannels, vae.UseQuantConv, vae.UsePostQuantConv, vae.ScaleFactor), Is.EqualTo((16, false, false, 8)));
        Assert.That((vae.ScalingFactor, vae.ShiftFactor), Is.EqualTo((scaling, (double?)shift)));
    }

    static void AssertReleasedVae(AutoencoderKLConfig vae, double scaling, double shift)
    {
        AssertFlowVae(vae, scaling, shift);
        Assert.That(vae.BlockOutChannels, Is.EqualTo(new[] { 128, 256, 512, 512 }));
        Assert.That((vae.LayersPerBlock, vae.NormNumGroups, vae.SampleSize), Is.EqualTo((2, 32, 1024)));
    }

    static void AssertClip(ClipTextConfig clip, int hidden, int layers, int heads, int intermediate, ClipActivation activation, int projection)
    {
        Assert.That(new[] { clip.HiddenSize, clip.NumHiddenLayers, clip.NumAttentionHeads, clip.IntermediateSize, clip.ProjectionDim },
            Is.EqualTo(new[] { hidden, layers, heads, intermediate, projection }));
        Assert.That((clip.HiddenAct, clip.VocabSize, clip.MaxPositionEmbeddings), Is.EqualTo((activation, 49408, 77)));
        Assert.That(clip.EosTokenId, Is.EqualTo(ClipTextConfig.LegacyEosTokenId), "the released folders' pre-4.31 config");
    }

    static void AssertT5Xxl(T5Config t5)
    {
        Assert.That(new[] { t5.DModel, t5.DKv, t5.DFf, t5.NumLayers, t5.NumHeads, t5.VocabSize }, Is.EqualTo(new[] { 4096, 64, 10240, 24, 64, 32128 }));
        Assert.That((t5.IsGatedAct, t5.DenseActFn), Is.EqualTo((true, T5Activation.GeluTanh)));
    }

    /// <summary>A prompt encodes to BOS … EOS with ids the text encoder has; padded to 77 as the pipelines
    /// pad, the text encoder's pooling rule finds the prompt's EOS.</summary>
    static void AssertClipTokenizer(string folder, ClipTextConfig encoder, bool padsWithEos)
    {
        var tokenizer = ClipTokenizer.FromFolder(folder);
        var ids = tokenizer.Encode(Prompt);
        Assert.That(ids.Length, Is.GreaterThan(3));
        Assert.That((ids[0], ids[^1]), Is.EqualTo(((long)tokenizer.BosId, (long)tokenizer.EosId)));
        Assert.That(ids, Is.All.InRange(0L, encoder.VocabSize - 1L));
        Assert.That(tokenizer.PadId, padsWithEos ? Is.EqualTo(tokenizer.EosId) : Is.EqualTo(0), "pad token");
        var row = tokenizer.EncodeBatch([Prompt], maxLength: 77).Ids(0);
        Assert.That(row, Has.Length.EqualTo(77));
        Assert.That(encoder.PooledPosition(row), Is.EqualTo(ids.Length - 1), "pooled at the prompt's EOS");
    }

    static void AssertT5Tokenizer(string folder, T5Config encoder, int maxSequenceLength)
    {
        var tokenizer = T5Tokenizer.FromFolder(folder);
        var ids = tokenizer.Encode(Prompt);
        Assert.That(ids.Length, Is.GreaterThan(3));
        Assert.That(ids[^1], Is.EqualTo((long)tokenizer.EosId));
        Assert.That(ids, Is.All.InRange(0L, encoder.VocabSize - 1L));
        Assert.That(tokenizer.EncodeBatch([Prompt], maxSequenceLength).Ids(0), Has.Length.EqualTo(maxSequenceLength));
    }
}
