using XDit.Imaging;
using XDit.Models.Clip;
using XDit.Models.Flux;
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
/// FLUX.1 dev / schnell text-to-image as diffusers' <c>FluxPipeline</c> computes it: CLIP-L's pooled
/// output and T5's hidden states (no masks), the latent drawn unpacked and packed 2×2, FlowMatch Euler
/// with the dynamic shift μ of the image sequence length, the distilled guidance embedding (dev) instead
/// of classifier-free guidance, and the 16-channel VAE. Flux models are guidance-distilled: a negative
/// prompt (true CFG) is refused with a clear error.
/// </summary>
public sealed class FluxPipeline : IPipeline
{
    /// <summary>Latent rows per token row: the 2×2 packing of <see cref="Layout.FluxPack"/>.</summary>
    internal const int PackedPatch = 2;

    readonly ClipTokenizer _clipTokenizer;
    readonly T5Tokenizer _t5Tokenizer;
    readonly ClipTextModel _clip;
    readonly T5EncoderModel _t5;
    readonly FluxTransformer2DModel _transformer;
    readonly AutoencoderKL _vae;
    readonly FlowMatchEulerScheduler _scheduler;
    readonly DType _dtype;

    FluxPipeline(DeviceContext context, DType dtype, ClipTokenizer clipTokenizer, T5Tokenizer t5Tokenizer, ClipTextModel clip,
        T5EncoderModel t5, FluxTransformer2DModel transformer, AutoencoderKL vae, FlowMatchEulerScheduler scheduler)
    {
        Context = context;
        _dtype = dtype;
        (_clipTokenizer, _t5Tokenizer, _clip, _t5) = (clipTokenizer, t5Tokenizer, clip, t5);
        (_transformer, _vae, _scheduler) = (transformer, vae, scheduler);
    }

    public DeviceContext Context { get; }
    public FluxTransformer2DModel Transformer => _transformer;

    /// <summary>The latent is packed 2×2 after the VAE's downsampling.</summary>
    public int SizeMultiple => _vae.Config.ScaleFactor * 2;

    public int DefaultImageSize => DefaultSize;

    /// <summary>The pipeline's default height and width (diffusers' FluxPipeline: 128 × the VAE factor 8).</summary>
    internal const int DefaultSize = 1024;

    /// <summary>FLUX.1-dev carries a guidance embedding; FLUX.1-schnell does not.</summary>
    public bool HasGuidanceEmbedding => _transformer.Config.GuidanceEmbeds;

    /// <param name="shared">Weights shared with other pipelines loaded with it (in-process CPU ranks), or null.</param>
    public static FluxPipeline Load(string folder, DeviceContext context, DType dtype = DType.F32, SharedWeights? shared = null)
    {
        var diffusers = DiffusersFolder.Open(folder);
        if (diffusers.Index.ClassName != "FluxPipeline")
            throw new XDitException(Native.XditStatus.Unsupported, $"{folder}: model_index.json names {diffusers.Index.ClassName}, not FluxPipeline");
        var textDType = dtype == DType.F16 ? DType.BF16 : dtype;
        var loader = new ComponentLoader(diffusers, context, shared);
        try
        {
            var clip = loader.Module("text_encoder", new ClipTextModel(ClipTextConfig.FromJson(diffusers.Config("text_encoder").Root), withProjection: false),
                (m, w) => m.LoadWeights(w, context, dtype));
            var t5 = loader.Module("text_encoder_2", new T5EncoderModel(T5Config.FromJson(diffusers.Config("text_encoder_2").Root)),
                (m, w) => m.LoadWeights(w, context, textDType));
            var transformer = loader.Module("transformer", new FluxTransformer2DModel(FluxConfig.FromJson(diffusers.Config("transformer").Root)), dtype);
            var vae = loader.Vae();
            var scheduler = loader.Scheduler(FlowMatchEulerScheduler.FromConfig);
            return new FluxPipeline(context, dtype, ClipTokenizer.FromFolder(diffusers.Component("tokenizer")),
                T5Tokenizer.FromFolder(diffusers.Component("tokenizer_2")), clip, t5, transformer, vae, scheduler);
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
        CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        if (mesh.Cfg is not null)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                "FLUX.1 is guidance-distilled: it has no classifier-free guidance to run in parallel (xDiT marks CFG parallel n/a for Flux)");
        return Run(request, mesh, progress, cancellation);
    }

    /// <inheritdoc/>
    public void ValidateRequest(GenerationRequest request)
    {
        RequestValidation.Validate(request, SizeMultiple);
        if (!string.IsNullOrEmpty(request.NegativePrompt))
            throw new XDitException(Native.XditStatus.InvalidArgument,
                "FLUX.1 is guidance-distilled: it takes no negative prompt (classifier-free guidance does not apply); use the guidance scale");
    }

    GenerationResult Run(GenerationRequest request, ProcessMesh? mesh, IProgress<GenerationProgress>? progress, CancellationToken cancellation)
    {
        ValidateRequest(request);
        using var steps = StepGraph.Create(Context, request, mesh);
        var clock = new StageClock(progress, request.Steps);
        using var scope = new TensorScope();
        var batch = request.BatchSize;
        var prompts = request.PromptPerImage();

        clock.Report("text encoders");
        var (context, pooled) = EncodeText(prompts, request.MaxSequenceLength > 0 ? request.MaxSequenceLength : 512);
        clock.End("text encoders");

        var (latents, latentHeight, latentWidth) = InitialLatents(request);
        var imageIds = FluxPositionIds.Image((int)latentHeight / 2, (int)latentWidth / 2);
        var textIds = FluxPositionIds.Text((int)context.Size(1));
        SetTimesteps(_scheduler, request.Steps, (int)latents.Size(1));
        var guidance = HasGuidanceEmbedding ? Enumerable.Repeat((float)request.GuidanceScale, batch).ToArray() : null;
        if (mesh?.Pipeline is not null)
        {
            var pieces = new FluxPipeFusion(_transformer, _scheduler, mesh.SequenceParallel, context, pooled, guidance, imageIds, textIds);
            latents = PipeFusionDenoising.Run(mesh, pieces, latents, request.Steps, latentHeight / PackedPatch, latentWidth / PackedPatch,
                PackedPatch, clock, cancellation);
        }
        else
        {
            using var guidanceValues = guidance is null ? null : Tensor.FromArray(Context, guidance, guidance.Length);
            for (int i = 0; i < request.Steps; i++)
            {
                ProcessMesh.ThrowIfCancelled(mesh, Context, cancellation);
                clock.Report("denoising", i + 1);
                using var stepScope = new TensorScope();
                var timesteps = Enumerable.Repeat((float)(_scheduler.Timesteps[i] / 1000), batch).ToArray();
                var velocity = steps.Run(latents, timesteps,
                    (x, t) => _transformer.Forward(x, context, pooled, t, guidanceValues, imageIds, textIds, mesh?.SequenceParallel));
                latents = _scheduler.Step(velocity, i, latents).MoveToOuterScope();
                clock.End($"step {i + 1}");
            }
        }
        _scheduler.Reset();
        var unpackedLatents = Layout.FluxUnpack(latents, (int)latentHeight, (int)latentWidth);
        var latentValues = unpackedLatents.To(DType.F32).ToArray<float>();
        var shape = unpackedLatents.Shape.ToArray();
        if (request.LatentsOnly || mesh is { Decodes: false }) return new GenerationResult([], request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
        clock.Report("vae decode", request.Steps);
        var decoded = _vae.DecodeScaled(unpackedLatents.To(DType.F32), mesh?.Vae);
        if (mesh is { IsReplicaLeader: false }) return new GenerationResult([], request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
        var images = ImageConversion.ToRgbBytes(decoded);
        clock.End("vae decode");
        return new GenerationResult(images, request.Width, request.Height, latentValues, shape, clock.Timings) { Warnings = clock.Warnings };
    }

    /// <summary>The seeded starting latent, drawn as [N, C, 2·(H/16), 2·(W/16)] and packed 2×2 into tokens
    /// as the diffusers pipeline does, with the unpacked latent's height and width.</summary>
    internal (Tensor Packed, long Height, long Width) InitialLatents(GenerationRequest request)
    {
        var factor = _vae.Config.ScaleFactor;
        long height = 2 * (request.Height / (factor * 2)), width = 2 * (request.Width / (factor * 2));
        using var unpacked = RequestNoise.Draw(Context, request, _dtype, _transformer.Config.InChannels / 4, height, width);
        return (Layout.FluxPack(unpacked), height, width);
    }

    /// <summary>The pipeline's sigmas (linear from 1 to 1/steps), shifted for the image's token count when
    /// the scheduler shifts dynamically.</summary>
    internal static void SetTimesteps(FlowMatchEulerScheduler scheduler, int steps, int imageTokens)
    {
        var sigmas = Enumerable.Range(0, steps).Select(i => steps == 1 ? 1.0 : 1.0 + i * (1.0 / steps - 1.0) / (steps - 1)).ToList();
        scheduler.SetTimesteps(sigmas, scheduler.Options.UseDynamicShifting ? scheduler.MuFor(imageTokens) : null);
    }

    /// <summary>The T5 hidden states [N, T, 4096] and the pooled CLIP vector [N, 768] of the prompts, in the
    /// transformer's dtype.</summary>
    internal (Tensor Context, Tensor Pooled) EncodeText(IReadOnlyList<string> prompts, int t5Length)
    {
        Tensor pooled;
        using (var clip = TextEncoding.Clip(_clipTokenizer, _clip, prompts, Context, hiddenStates: false))
            pooled = clip.PooledOutput.DType == _dtype ? clip.PooledOutput.Clone() : clip.PooledOutput.To(_dtype);
        var context = TextEncoding.T5(_t5Tokenizer, _t5, prompts, t5Length, Context);
        return (context.DType == _dtype ? context : context.To(_dtype), pooled);
    }

    public void Dispose()
    {
        _clip.Dispose();
        _t5.Dispose();
        _transformer.Dispose();
        _vae.Dispose();
        _scheduler.Dispose();
    }
}
