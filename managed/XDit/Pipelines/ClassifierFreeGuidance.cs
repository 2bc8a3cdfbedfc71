using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>
/// Classifier-free guidance as the diffusers pipelines batch it (the unconditional half first), on one
/// rank or split over a CFG pair: rank 0 of the pair runs the unconditional branch, rank 1 the
/// conditional one, each with one half of the batch; the predictions are all-gathered and both ranks
/// apply the same guidance, so their latents stay identical.
/// </summary>
internal static class ClassifierFreeGuidance
{
    public static bool IsOn(GenerationRequest request) => request.GuidanceScale > 1;

    public static void CheckGroup(GenerationRequest request, ICommunicator? cfg)
    {
        if (cfg is not null && (cfg.Size != 2 || !IsOn(request)))
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"CFG parallelism needs a group of 2 ranks and a guidance scale > 1 (got {cfg.Size} ranks, scale {request.GuidanceScale})");
    }

    /// <summary>The texts this rank encodes: [negative × batch, prompts] when guiding on one rank, this
    /// rank's half with CFG parallelism, the prompts alone without guidance.</summary>
    public static List<string> Texts(GenerationRequest request, ICommunicator? cfg)
    {
        var prompts = request.PromptPerImage();
        if (!IsOn(request)) return prompts;
        var negatives = Enumerable.Repeat(request.NegativePrompt, request.BatchSize).ToList();
        if (cfg is not null) return cfg.Rank == 0 ? negatives : prompts;
        return negatives.Concat(prompts).ToList();
    }

    /// <summary>The transformer's input: the latents twice when both halves run on this rank.</summary>
    public static Tensor ModelInput(Tensor latents, GenerationRequest request, ICommunicator? cfg) =>
        IsOn(request) && cfg is null ? Layout.Cat(0, latents, latents) : latents;

    /// <summary>The guided prediction for the batch from this rank's model output.</summary>
    public static Tensor Combine(Tensor prediction, GenerationRequest request, ICommunicator? cfg)
    {
        if (!IsOn(request)) return prediction;
        if (cfg is null)
        {
            var batch = request.BatchSize;
            return Elementwise.Lerp(prediction.Narrow(0, 0, batch), prediction.Narrow(0, batch, batch), request.GuidanceScale);
        }
        var both = Tensor.Empty(prediction.Context, prediction.DType, [2, .. prediction.Shape.ToArray()]);
        cfg.AllGather(prediction.Contiguous(), both);
        return Elementwise.Lerp(both.Narrow(0, 0, 1).Squeeze(0), both.Narrow(0, 1, 1).Squeeze(0), request.GuidanceScale);
    }
}
