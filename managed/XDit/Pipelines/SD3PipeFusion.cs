using XDit.Models.SD3;
using XDit.Ops;
using XDit.Parallel;
using XDit.Schedulers;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>SD3 cut into PipeFusion's pieces (<see cref="IPipeFusionModel"/>): the latent [B, C, H, W] in row
/// bands (each band's image tokens sharded over <paramref name="sequenceParallel"/> when given, the text
/// whole on every rank); the step's first band carries the text stream behind its image tokens
/// ([image, text], SD3's order) and leaves the text keys and values in every layer's buffer for the
/// later bands.</summary>
internal sealed class SD3PipeFusion(SD3Transformer2DModel transformer, IScheduler scheduler, GenerationRequest request,
    ICommunicator? cfg, SequenceParallelGroup? sequenceParallel, Tensor context, Tensor pooled) : IPipeFusionModel
{
    public int Layers => transformer.Blocks.Count;

    public long[] HiddenShape(PatchBand band) =>
        [context.Size(0), LocalImage(sequenceParallel, band) + (band.IsFirst ? context.Size(1) : 0), transformer.Config.InnerDim];

    /// <summary>The band's image tokens on this rank.</summary>
    static long LocalImage(SequenceParallelGroup? sequenceParallel, PatchBand band) => sequenceParallel?.ShardLength(band.Tokens) ?? band.Tokens;

    public Tensor LatentBand(Tensor latents, PatchBand band) => latents.Narrow(2, band.LatentRowStart, band.LatentRows);

    public IPipeFusionStep Step(int index)
    {
        var timesteps = Enumerable.Repeat((float)scheduler.Timesteps[index], (int)context.Size(0)).ToArray();
        return new StepPieces(transformer, scheduler, request, cfg, sequenceParallel, index, transformer.Condition(timesteps, context, pooled));
    }

    sealed class StepPieces(SD3Transformer2DModel transformer, IScheduler scheduler, GenerationRequest request, ICommunicator? cfg,
        SequenceParallelGroup? sequenceParallel, int index, SD3Transformer2DModel.Conditioning conditioning) : IPipeFusionStep
    {
        long TextTokens => conditioning.Context.Size(1);

        public Tensor Embed(Tensor latentBand, PatchBand band)
        {
            var image = transformer.PatchEmbedding.Forward(ClassifierFreeGuidance.ModelInput(latentBand, request, cfg), band.TokenRowStart, band.GridRows);
            if (sequenceParallel is not null) image = sequenceParallel.Shard(image);
            return band.IsFirst ? Layout.Cat(1, image, conditioning.Context) : image;
        }

        public Tensor Blocks(Tensor hidden, PatchBand band, int first, int end, KeyValueBuffers buffers)
        {
            var local = LocalImage(sequenceParallel, band);
            var image = hidden.Narrow(1, 0, local);
            var text = band.IsFirst ? hidden.Narrow(1, local, TextTokens) : null;
            var (imageOut, textOut) = transformer.RunBlocks(image, text, conditioning, first, end,
                layer => buffers.Joint(layer, band, TextTokens, textFirst: false));
            // No text after the last block (context_pre_only): the last stage predicts from the image alone.
            return textOut is null ? imageOut : Layout.Cat(1, imageOut, textOut);
        }

        public Tensor Predict(Tensor hidden, PatchBand band)
        {
            var image = hidden.Narrow(1, 0, LocalImage(sequenceParallel, band));
            var prediction = transformer.Output(image, conditioning, band.LatentRows, band.GridWidth * transformer.Config.PatchSize, sequenceParallel);
            return ClassifierFreeGuidance.Combine(prediction, request, cfg);
        }

        public Tensor SchedulerStep(Tensor prediction, Tensor sample, int slice) => scheduler.Step(prediction, index, sample, slice);
    }
}
