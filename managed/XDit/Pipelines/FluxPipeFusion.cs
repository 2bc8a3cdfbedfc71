using XDit.Models.Flux;
using XDit.Ops;
using XDit.Parallel;
using XDit.Schedulers;
using XDit.Tensors;

namespace XDit.Pipelines;

/// <summary>Flux cut into PipeFusion's pieces (<see cref="IPipeFusionModel"/>): the packed latent [B, N, C·4]
/// in bands of token rows; the step's first band carries the text stream in front of its image tokens
/// ([text, image], Flux's order, through the double- and the single-stream blocks) and leaves the text
/// keys and values in every layer's buffer for the later bands, which attend with their own rows of the
/// rotary tables. With <paramref name="sequenceParallel"/> each band's image tokens (and their rotary
/// rows) are sharded over the group; the text is whole on every rank.</summary>
internal sealed class FluxPipeFusion(FluxTransformer2DModel transformer, FlowMatchEulerScheduler scheduler, SequenceParallelGroup? sequenceParallel,
    Tensor encoderHiddenStates, Tensor pooled, float[]? guidance, float[] imageIds, float[] textIds) : IPipeFusionModel
{
    public int Layers => transformer.Layers;

    long TextTokens => encoderHiddenStates.Size(1);

    public long[] HiddenShape(PatchBand band) =>
        [encoderHiddenStates.Size(0), (band.IsFirst ? TextTokens : 0) + (sequenceParallel?.ShardLength(band.Tokens) ?? band.Tokens), transformer.Config.InnerDim];

    public Tensor LatentBand(Tensor latents, PatchBand band) => latents.Narrow(1, band.TokenStart, band.Tokens);

    public IPipeFusionStep Step(int index)
    {
        var timesteps = Enumerable.Repeat((float)(scheduler.Timesteps[index] / 1000), (int)encoderHiddenStates.Size(0)).ToArray();
        return new StepPieces(transformer, scheduler, sequenceParallel, TextTokens, index, transformer.Condition(encoderHiddenStates, pooled, timesteps, guidance, imageIds, textIds));
    }

    sealed class StepPieces(FluxTransformer2DModel transformer, FlowMatchEulerScheduler scheduler, SequenceParallelGroup? sequenceParallel,
        long textTokens, int index,
        FluxTransformer2DModel.Conditioning conditioning) : IPipeFusionStep
    {
        public Tensor Embed(Tensor latentBand, PatchBand band)
        {
            var image = transformer.XEmbedder.Forward(sequenceParallel?.Shard(latentBand) ?? latentBand);
            return band.IsFirst ? Layout.Cat(1, conditioning.Text, image) : image;
        }

        public Tensor Blocks(Tensor hidden, PatchBand band, int first, int end, KeyValueBuffers buffers)
        {
            var text = band.IsFirst ? textTokens : 0;
            // The band's rows of the rotary tables [text + image, D]: the text's when it carries it, then its image tokens'.
            Tensor Rows(Tensor table)
            {
                var image = table.Narrow(0, textTokens + band.TokenStart, band.Tokens);
                if (sequenceParallel is not null) image = sequenceParallel.Shard(image, dim: 0);
                return text > 0 ? Layout.Cat(0, table.Narrow(0, 0, text), image) : image;
            }
            return transformer.RunBlocks(hidden, text, conditioning.Activated, Rows(conditioning.Cos), Rows(conditioning.Sin), first, end,
                layer => buffers.Joint(layer, band, textTokens, textFirst: true));
        }

        public Tensor Predict(Tensor hidden, PatchBand band)
        {
            var velocity = transformer.Output(hidden, band.IsFirst ? textTokens : 0, conditioning.Activated);
            return sequenceParallel?.Gather(velocity, band.Tokens) ?? velocity;
        }

        public Tensor SchedulerStep(Tensor prediction, Tensor sample, int slice) => scheduler.Step(prediction, index, sample, slice);
    }
}
