using XDit.Models.PixArt;
using XDit.Parallel;
using XDit.Schedulers;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>PixArt cut into PipeFusion's pieces (<see cref="IPipeFusionModel"/>): the latent [B, C, H, W] in
/// row bands (each band's tokens sharded over <paramref name="sequenceParallel"/> when given), the
/// conditioning of each step as <see cref="PixArtPipeline"/> computes it, and the cross-attention to the
/// caption local to each band (it is per token).</summary>
internal sealed class PixArtPipeFusion(PixArtTransformer2DModel transformer, IScheduler scheduler, GenerationRequest request,
    ICommunicator? cfg, SequenceParallelGroup? sequenceParallel, Tensor caption, Tensor captionMask, float[]? sizes, float[]? ratios)
    : IPipeFusionModel
{
    public int Layers => transformer.Blocks.Count;

    /// <summary>Both guidance halves run on this rank unless a CFG pair splits them.</summary>
    long ModelBatch => caption.Size(0);

    public long[] HiddenShape(PatchBand band) => [ModelBatch, sequenceParallel?.ShardLength(band.Tokens) ?? band.Tokens, transformer.Config.InnerDim];

    public Tensor LatentBand(Tensor latents, PatchBand band) => latents.Narrow(2, band.LatentRowStart, band.LatentRows);

    public IPipeFusionStep Step(int index)
    {
        var timesteps = Enumerable.Repeat((float)scheduler.Timesteps[index], (int)ModelBatch).ToArray();
        return new StepPieces(transformer, scheduler, request, cfg, sequenceParallel, index, transformer.Condition(timesteps, caption, captionMask, sizes, ratios));
    }

    sealed class StepPieces(PixArtTransformer2DModel transformer, IScheduler scheduler, GenerationRequest request, ICommunicator? cfg,
        SequenceParallelGroup? sequenceParallel, int index, PixArtTransformer2DModel.Conditioning conditioning) : IPipeFusionStep
    {

        public Tensor Embed(Tensor latentBand, PatchBand band) =>
            transformer.Embed(ClassifierFreeGuidance.ModelInput(latentBand, request, cfg), band.TokenRowStart, band.GridRows, sequenceParallel);

        public Tensor Blocks(Tensor hidden, PatchBand band, int first, int end, KeyValueBuffers buffers) =>
            transformer.RunBlocks(hidden, conditioning, first, end, layer => buffers.For(layer, band));

        public Tensor Predict(Tensor hidden, PatchBand band)
        {
            var p = transformer.Config.PatchSize;
            var prediction = transformer.Output(hidden, conditioning, band.LatentRows, band.GridWidth * p, sequenceParallel);
            // The learned-variance channels are not part of the noise prediction.
            return ClassifierFreeGuidance.Combine(prediction.Narrow(1, 0, transformer.Config.InChannels), request, cfg);
        }

        public Tensor SchedulerStep(Tensor prediction, Tensor sample, int slice) => scheduler.Step(prediction, index, sample, slice);
    }
}
