using XDit.Imaging;
using XDit.Models.PixArt;
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
/// PixArt-α / PixArt-Σ text-to-image, as diffusers' <c>PixArtAlphaPipeline</c> and
/// <c>PixArtSigmaPipeline</c> compute it: T5 caption embeddings (with the padding mask), classifier-free
/// guidance against the negative prompt (unconditional half first), the seeded initial latent drawn as a
/// CPU torch generator would, DPM-Solver++ steps, the VAE decode in fp32, and with resolution binning
/// (<see cref="GenerationRequest.UseResolutionBinning"/>) generation at the nearest aspect-ratio bin and the
/// decoded images resized and center-cropped back to the requested size. The components stay resident
/// between calls; a pipeline serves one generation at a time.
/// </summary>
/// <remarks>Differences from diffusers, by design: captions are not cleaned (diffusers' optional
/// bs4/ftfy caption cleaning); with binning on, a transformer whose sample size has no aspect-ratio table
/// generates at the requested size (diffusers raises "Invalid sample size"); and the resize back never
/// comes out smaller than requested (see <see cref="CoverCrop"/>).</remarks>
public sealed class PixArtPipeline : IPipeline
{
    readonly T5Tokenizer _tokenizer;
    readonly T5EncoderModel _textEncoder;
    readonly PixArtTransformer2DModel _transformer;
    readonly AutoencoderKL _vae;
    readonly IScheduler _scheduler;
    readonly DType _dtype;

    PixArtPipeline(DeviceContext context, DType dtype, bool isSigma, T5Tokenizer tokenizer, T5EncoderModel textEncoder,
        PixArtTransformer2DModel transformer, AutoencoderKL vae, IScheduler scheduler)
    {
        Context = context;
        _dtype = dtype;
        IsSigma = isSigma;
        _tokenizer = tokenizer;
        _textEncoder = textEncoder;
        _transformer = transformer;
        _vae = vae;
        _scheduler = scheduler;
    }

    public DeviceContext Context { get; }

    /// <summary>PixArt-Σ (300 caption tokens) rather than PixArt-α (120).</summary>
    public bool IsSigma { get; }

    public PixArtTransformer2DModel Transformer => _transformer;

    /// <summary>The image size in pixels per latent pixel.</summary>
    public int VaeScaleFactor => _vae.Config.ScaleFactor;

    public int SizeMultiple => VaeScaleFactor * _transformer.Config.PatchSize;

    public int DefaultImageSize => _transformer.Config.SampleSize * VaeScaleFactor;

    /// <summary>Loads every component of a diffusers PixArt folder onto <paramref name="context"/>. The
    /// transformer runs in <paramref name="dtype"/>; the text encoder in f32 or bf16 (never f16); the VAE
    /// in f32.</summary>
    /// <param name="shared">Weights shared with other pipelines loaded with it (in-process CPU ranks), or null.</param>
    public static PixArtPipeline Load(string folder, DeviceContext context, DType dtype = DType.F32, SharedWeights? shared = null)
    {
        var diffusers = DiffusersFolder.Open(folder);
        var className = diffusers.Index.ClassName;
        if (className is not ("PixArtAlphaPipeline" or "PixArtSigmaPipeline"))
            throw new XDitException(Native.XditStatus.Unsupported, $"{folder}: model_index.json names {className}, not a PixArt pipeline");
        var textDType = dtype == DType.F16 ? DType.BF16 : dtype;
        var loader = new ComponentLoader(diffusers, context, shared);
        try
        {
            var tokenizer = T5Tokenizer.FromFolder(diffusers.Component("tokenizer"));
            var textEncoder = loader.Module("text_encoder", new T5EncoderModel(T5Config.FromJson(diffusers.Config("text_encoder").Root)),
                (m, w) => m.LoadWeights(w, context, textDType));
            var transformer = loader.Module("transformer", new PixArtTransformer2DModel(PixArtConfig.FromJson(diffusers.Config("transformer").Root)), dtype);
            var vae = loader.Vae();
            var scheduler = loader.Scheduler(DpmSolverMultistepScheduler.FromConfig);
            return new PixArtPipeline(context, dtype, className == "PixArtSigmaPipeline", tokenizer, textEncoder, transformer, vae, scheduler);
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
    public void ValidateRequest(GenerationRequest request)
    {
        // The size checks apply to what the model generates: the bin, when binning applies.
        var (height, width) = GenerationSize(request);
        RequestValidation.Validate(request with { Height = height, Width = width }, SizeMultiple);
    }

    GenerationResult Run(GenerationRequest request, ProcessMesh? mesh, IProgress<GenerationProgress>? progress, CancellationToken cancellation)
    {
        ValidateRequest(request);
        var bin = ResolutionBin(request);
        var (height, width) = GenerationSize(request);
        var cfg = mesh?.Cfg;
        ClassifierFreeGuidance.CheckGroup(request, cfg);
        using var steps = StepGraph.Create(Context, request, mesh);
        var clock = new StageClock(progress, request.Steps);
        using var scope = new TensorScope();

        clock.Report("text encoder");
        var texts = ClassifierFreeGuidance.Texts(request, cfg);
        var (caption, captionMask) = EncodeText(texts, request.MaxSequenceLength > 0 ? request.MaxSequenceLength : IsSigma ? 300 : 120);
        clock.End("text encoder");

        _scheduler.SetTimesteps(request.Steps);
        var latents = InitialLatents(request);
        var latentShape = latents.Shape.ToArray();

        var sizes = Enumerable.Range(0, texts.Count).SelectMany(_ => new float[] { height, width }).ToArray();
        var ratios = Enumerable.Repeat((float)height / width, texts.Count).ToArray();
        var conditions = _transformer.Config.UseAdditionalConditions;
        if (mesh?.Pipeline is not null)
        {
            var pieces = new PixArtPipeFusion(_transformer, _scheduler, request, cfg, mesh.SequenceParallel, caption, captionMask,
                conditions ? sizes : null, conditions ? ratios : null);
            var p = _transformer.Config.PatchSize;
            latents = PipeFusionDenoising.Run(mesh, pieces, latents, request.Steps, latents.Size(2) / p, latents.Size(3) / p, p, clock, cancellation);
        }
        else
            for (int i = 0; i < request.Steps; i++)
            {
                ProcessMesh.ThrowIfCancelled(mesh, Context, cancellation);
                clock.Report("denoising", i + 1);
                using var stepScope = new TensorScope();
                var modelInput = ClassifierFreeGuidance.ModelInput(latents, request, cfg);
                var timesteps = Enumerable.Repeat((float)_scheduler.Timesteps[i], (int)modelInput.Size(0)).ToArray();
                var prediction = steps.Run(modelInput, timesteps, (x, t) => _transformer.Forward(x, t, caption, captionMask,
                    conditions ? sizes : default, conditions ? ratios : default, mesh?.SequenceParallel));
                // The learned-variance channels are not part of the noise prediction.
                var noise = ClassifierFreeGuidance.Combine(prediction.Narrow(1, 0, _transformer.Config.InChannels), request, cfg);
                latents = _scheduler.Step(noise, i, latents).MoveToOuterScope();
                clock.End($"step {i + 1}");
            }
        _scheduler.Reset();
        var latentValues = latents.To(DType.F32).ToArray<float>();
        GenerationResult LatentsOnly() => new([], request.Width, request.Height, latentValues, latentShape, clock.Timings) { ResolutionBin = bin, Warnings = clock.Warnings };
        if (request.LatentsOnly || mesh is { Decodes: false }) return LatentsOnly();

        clock.Report("vae decode", request.Steps);
        var decoded = _vae.DecodeScaled(latents.To(DType.F32), mesh?.Vae);
        if (mesh is { IsReplicaLeader: false }) return LatentsOnly();
        if (bin is not null) decoded = ImageResize.ResizeAndCrop(decoded, request.Height, request.Width);
        var images = ImageConversion.ToRgbBytes(decoded);
        clock.End("vae decode");
        return new GenerationResult(images, request.Width, request.Height, latentValues, latentShape, clock.Timings) { ResolutionBin = bin, Warnings = clock.Warnings };
    }

    /// <summary>The starting latent of a request: <c>torch.randn</c> with a CPU generator seeded with the
    /// request's seed (the numbers a diffusers pipeline gets from <c>torch.Generator("cpu").manual_seed</c>),
    /// times the scheduler's initial noise sigma, in the transformer's dtype, at the size the request
    /// generates at (<see cref="GenerationSize"/>).</summary>
    public Tensor InitialLatents(GenerationRequest request)
    {
        var factor = VaeScaleFactor;
        var (height, width) = GenerationSize(request);
        var noise = RequestNoise.Draw(Context, request, _dtype, _transformer.Config.InChannels, height / factor, width / factor);
        if (_scheduler.InitNoiseSigma == 1) return noise;
        using (noise) return Elementwise.Affine(noise, _scheduler.InitNoiseSigma, 0);
    }

    /// <summary>The aspect-ratio bin a request generates at: the closest bin of the table for the transformer's
    /// sample size, or null when the request turns binning off or the sample size has no table.</summary>
    public AspectRatioBin? ResolutionBin(GenerationRequest request)
    {
        if (!request.UseResolutionBinning) return null;
        var table = AspectRatioBins.ForSampleSize(_transformer.Config.SampleSize, IsSigma);
        return table is null ? null : AspectRatioBins.Classify(request.Height, request.Width, table);
    }

    /// <summary>The image size the transformer and the VAE work at: the resolution bin's, else the request's.</summary>
    public (int Height, int Width) GenerationSize(GenerationRequest request) =>
        ResolutionBin(request) is { } bin ? (bin.Height, bin.Width) : (request.Height, request.Width);

    /// <summary>Caption embeddings [N, L, C] in the transformer's dtype and the key mask bool [N, L].</summary>
    internal (Tensor Caption, Tensor Mask) EncodeText(IReadOnlyList<string> texts, int maxLength)
    {
        var tokens = _tokenizer.EncodeBatch(texts, maxLength, padToMaxLength: true, truncate: true);
        int n = tokens.BatchSize, length = tokens.Length;
        var ids = new long[n * length];
        var mask = new long[n * length];
        for (int r = 0; r < n; r++)
            for (int t = 0; t < length; t++)
            {
                ids[r * length + t] = tokens.InputIds[r, t];
                mask[r * length + t] = tokens.AttentionMask[r, t];
            }
        var hidden = _textEncoder.Forward(ids, mask, n, Context);
        var caption = hidden.DType == _dtype ? hidden : hidden.To(_dtype);
        var keep = Tensor.FromArray(Context, mask.Select(m => m != 0).ToArray(), n, length);
        return (caption, keep);
    }

    public void Dispose()
    {
        _textEncoder.Dispose();
        _transformer.Dispose();
        _vae.Dispose();
        _scheduler.Dispose();
    }
}
