using XDit.Models.Clip;
using XDit.Models.T5;
using XDit.Ops;
using XDit.Tensors;
using XDit.Text;

namespace XDit.Pipelines;

/// <summary>Prompt encodings as diffusers' SD3 and Flux pipelines compute them: padded to max length,
/// truncated, and (unlike PixArt) without passing the attention mask to the encoders.</summary>
internal static class TextEncoding
{
    /// <summary>T5 hidden states [N, maxLength, d_model], no attention mask.</summary>
    public static Tensor T5(T5Tokenizer tokenizer, T5EncoderModel encoder, IReadOnlyList<string> prompts, int maxLength, DeviceContext context)
    {
        var batch = tokenizer.EncodeBatch(prompts, maxLength, padToMaxLength: true, truncate: true);
        return encoder.Forward(Flatten(batch.InputIds), null, batch.BatchSize, context);
    }

    /// <summary>CLIP over 77 padded tokens: the output (pooled, projected, hidden states) of the model.</summary>
    public static ClipTextOutput Clip(ClipTokenizer tokenizer, ClipTextModel encoder, IReadOnlyList<string> prompts, DeviceContext context,
        bool hiddenStates)
    {
        var batch = tokenizer.EncodeBatch(prompts, 77, padToMaxLength: true, truncate: true);
        return encoder.Forward(Flatten(batch.InputIds), batch.BatchSize, context, outputHiddenStates: hiddenStates);
    }

    static long[] Flatten(long[,] ids)
    {
        var flat = new long[ids.Length];
        Buffer.BlockCopy(ids, 0, flat, 0, ids.Length * sizeof(long));
        return flat;
    }

    /// <summary>[N, T, C] zero-padded on the channel axis to [N, T, width].</summary>
    public static Tensor PadChannels(Tensor x, long width)
    {
        var padded = Tensor.Zeros(x.Context, x.DType, x.Size(0), x.Size(1), width);
        using var target = padded.Narrow(2, 0, x.Size(2));
        Elementwise.Copy(x, target);
        return padded;
    }
}
