using XDit.Imaging;
using XDit.Models.Clip;
using XDit.Models.SD3;
using XDit.Models.T5;
using XDit.Models.Vae;
using XDit.Ops;
using XDit.Parallel;
using XDit.Rng;
using XDit.Schedulers;
using XDit.Tensors;
using XDit.Text;
using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>
/// Stable Diffusion 3 / 3.5 text-to-image as diffusers' <c>StableDiffusion3Pipeline</c> computes it: CLIP-L
/// and OpenCLIP bigG (penultimate hidden states side by side, zero-padded to T5's width, then T5's tokens
/// after them; pooled projections side by side), classifier-free guidance (negative half first), the
/// seeded latent, FlowMatch Euler steps, and the 16-channel VAE with its scaling and shift factors.
/// </summary>
public sealed class SD3Pipeline : IPipeline
{
    readonly ClipTokenizer _tokenizerL, _tokenizerG;
    readonly T5Tokenizer _tokenizerT5;
    readonly ClipTextModel _clipL, _clipG;
    readonly T5EncoderModel _t5;
    readonly SD3Transformer2DModel _transformer;
    readonly AutoencoderKL _vae;
    readonly FlowMatchEulerScheduler _scheduler;
    readonly DType _dtype;

    SD3Pipeline(DeviceContext context, DType dtype, ClipTokenizer tokenizerL, ClipTokenizer tokenizerG, T5Tokenizer tokenizerT5,
        ClipTextModel clipL, ClipTextModel clipG, T5EncoderModel t5, SD3Transformer2DModel transformer, AutoencoderKL vae,
        FlowMatchEulerScheduler scheduler)
    {
        Context = context;
        _dtype = dtype;
        (_tokenizerL, _tokenizerG, _tokenizerT5) = (tokenizerL, tokenizerG, tokenizerT5);
        (_clipL, _clipG, _t5) = (clipL, clipG, t5);
        (_transformer, _vae, _scheduler) = (transformer, vae, scheduler);
    }

    public DeviceContext Context { get; }
    public SD3Transformer2DModel Transformer => _transformer;
    public int SizeMultiple => _vae.Config.ScaleFactor * _transformer.Config.PatchSize;
    public int DefaultImageSize => _transformer.Config.SampleSize * _vae.Config.ScaleFactor;

    /// <param name="shared">Weights shared with other pipelines loaded with it (in-process CPU ranks), or null.</param>
    public static SD3Pipeline Load(string folder, DeviceContext context, DType dtype = DType.F32, SharedWeights? shared = null)
    {
        var diffusers = DiffusersFolder.Open(folder);
        if (diffusers.Index.ClassName != "StableDiffusion3Pipeline")
            throw new XDitException(Native.XditStatus.Unsupported, $"{folder}: model_index.json names {diffusers.Index.ClassName}, not StableDiffusion3Pipeline");
        var textDType = dtype == DType.F16 ? DType.BF16 : dtype;
        var loader = new ComponentLoader(diffusers, context, shared);
        try
        {
            ClipTextModel Clip(string component) =>
                loader.Module(component, new ClipTextModel(ClipTextConfig.FromJson(diffusers.Config(component).Root), withProjection: true),
                    (m, w) => m.LoadWeights(w, context, dtype));
            var clipL = Clip("text_encoder");
            var clipG = Clip("text_encoder_2");
            var t5 = loader.Module("text_encoder_3", new T5EncoderModel(T5Config.FromJson(diffusers.Config("text_encoder_3").Root)),
                (m, w) => m.LoadWeights(w, context, textDType));
            var transformer = loader.Module("transformer", new SD3Transformer2DModel(SD3Config.FromJson(diffusers.Config("transformer").Root)), dtype);
            var vae = loader.Vae();
            var scheduler = loader.Scheduler(FlowMatchEulerScheduler.FromConfig);
            return new SD3Pipeline(context, dtype, ClipTokenizer.FromFolder(diffusers.Component("tokenizer")),
                ClipTokenizer.FromFolder(diffusers.Component("tokenizer_2")), T5Tokenizer.FromFolder(diffusers.Component("tokenizer_3")),
                clipL, clipG, t5, transformer, vae, scheduler);
        }
        catch
        {
            loader.Abandon();
            throw;
        }
    }

    public GenerationResult Generate(GenerationRequest request, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default) => Run(request, null, progress, cancellation);

    /// <inheritdoc/>
    public GenerationResult Generate(GenerationRequest request, ProcessMesh mesh, IProgress<GenerationProgress>? progress = null,
        CancellationToken cancellation = default) => Run(request, mesh ?? throw new ArgumentNullException(nameof(mesh)), progress, cancellation);

    /// <inheritdoc/>
    public void ValidateRequest(GenerationRequest request) => RequestValidation.Validate(request, SizeMultiple);

    GenerationResult Run(GenerationRequest request, ProcessMesh? mesh, IProgress<GenerationProgress>? progress, CancellationToken cancellation)
    {
        ValidateRequest(request);
        var cfg = mesh?.Cfg;
        ClassifierFreeGuidance.CheckGroup(request, cfg);
        using var steps = StepGraph.Create(Context, request, mesh);
        var clock = new StageClock(progress, request.Steps);
        using var scope = new TensorScope();
        var texts = ClassifierFreeGuidance.Texts(request, cfg);

        clock.Report("text encoders");
        var (context, pooled) = EncodeText(texts, request.MaxSequenceLength > 0 ? request.MaxSequenceLength : 256);
        clock.End("text encoders");

        _scheduler.SetTimesteps(request.Steps);
        var factor = _vae.Config.ScaleFactor;
        var latents = RequestNoise.Draw(Context, request, _dtype, _transformer.Config.InChannels, request.Height / factor, request.Width / factor);
        if (mesh?.Pipeline is not null)
        {
            var pieces = new SD3PipeFusion(_transformer, _scheduler, request, cfg, mesh.SequenceParallel, context, pooled);
            var p = _transformer.Config.PatchSize;
            latents = PipeFusionDenoising.Run(mesh, pieces, latents, request.Steps, latents.Size(2) / p, latents.Size(3) / p, p, clock, cancellation);
        }
        else
            for (int i = 0; i < request.Steps; i++)
            {
                ProcessMesh.ThrowIfCancelled(mesh, Context, cancellation);
                clock.Report("denoising", i + 1);
                using var stepScope = new TensorScope();
                var input = ClassifierFreeGuidance.ModelInput(latents, request, cfg);
                var timesteps = Enumerable.Repeat((float)_scheduler.Timesteps[i], (int)input.Size(0)).ToArray();
                var prediction = steps.Run(input, timesteps, (x, t) => _transformer.Forward(x, t, context, pooled, mesh?.SequenceParallel));
                var velocity = ClassifierFreeGuidance.Combine(prediction, request, cfg);
                latents = _scheduler.Step(velocity, i, latents).MoveToOuterScope();
                clock.End($"step {i + 1}");
            }
        _scheduler.Reset();
        var latentValues = latents.To(DType.F32).ToArray<float>();
        var shape = latents.Shape.ToArray();
        if (request.LatentsOnly || mesh is { Decodes: false }) return new GenerationResult([], request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
        clock.Report("vae decode", request.Steps);
        var decoded = _vae.DecodeScaled(latents.To(DType.F32), mesh?.Vae);
        if (mesh is { IsReplicaLeader: false }) return new GenerationResult([], request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
        var images = ImageConversion.ToRgbBytes(decoded);
        clock.End("vae decode");
        return new GenerationResult(images, request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
    }

    /// <summary>The joint context [N, 77 + T5 tokens, 4096] and pooled vector [N, 2048] of SD3.</summary>
    internal (Tensor Context, Tensor Pooled) EncodeText(IReadOnlyList<string> texts, int t5Length)
    {
        using var l = TextEncoding.Clip(_tokenizerL, _clipL, texts, Context, hiddenStates: true);
        using var g = TextEncoding.Clip(_tokenizerG, _clipG, texts, Context, hiddenStates: true);
        var clip = Layout.Cat(2, l.HiddenStates[^2], g.HiddenStates[^2]);
        var t5 = TextEncoding.T5(_tokenizerT5, _t5, texts, t5Length, Context);
        var joint = Layout.Cat(1, TextEncoding.PadChannels(clip, t5.Size(2)), t5.DType == clip.DType ? t5 : t5.To(clip.DType));
        var pooled = Layout.Cat(1, l.TextEmbeds!, g.TextEmbeds!);
        return (joint.DType == _dtype ? joint : joint.To(_dtype), pooled.DType == _dtype ? pooled : pooled.To(_dtype));
    }

    public void Dispose()
    {
        _clipL.Dispose();
        _clipG.Dispose();
        _t5.Dispose();
        _transformer.Dispose();
        _vae.Dispose();
        _scheduler.Dispose();
    }
}
