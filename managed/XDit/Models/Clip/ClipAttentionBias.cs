using XDit.Native;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// The additive attention mask of transformers' CLIP text encoder: the causal mask
/// (<c>_create_4d_causal_attention_mask</c>: <c>finfo(float32).min</c> above the diagonal, so a token sees
/// only itself and the tokens before it) plus, when an attention mask is given, the padding mask
/// (<c>_prepare_4d_attention_mask</c>: <c>finfo.min</c> on every padded key). The two are summed in float32
/// as transformers adds them to the scores, so a key both later and padded gets −∞ and a query whose
/// visible keys are all padded attends uniformly to them, exactly as there. It stays f32 whatever the
/// model's dtype: the attention adds it to fp32 scores.
/// </summary>
public static class ClipAttentionBias
{
    /// <summary>f32 [1, 1, L, L] (causal only), or [batch, 1, L, L] with <paramref name="attentionMask"/>
    /// (row-major [batch, L]: 1 for tokens, 0 for padding).</summary>
    public static Tensor Create(DeviceContext context, int batch, int length, long[]? attentionMask)
    {
        if (attentionMask is not null && attentionMask.Length != (long)batch * length)
            throw new XDitException(XditStatus.InvalidArgument,
                $"attention mask of {attentionMask.Length} values for ids [{batch}, {length}]");
        var rows = attentionMask is null ? 1 : batch;
        var bias = new float[(long)rows * length * length];
        for (int b = 0; b < rows; b++)
        for (int q = 0; q < length; q++)
        for (int k = 0; k < length; k++)
        {
            var value = k > q ? float.MinValue : 0f;
            if (attentionMask is not null)
            {
                var keep = attentionMask[b * length + k];
                if (keep is not (0 or 1))
                    throw new XDitException(XditStatus.InvalidArgument, $"attention mask [{b}, {k}] is {keep}; it must be 1 (token) or 0 (padding)");
                if (keep == 0) value += float.MinValue;
            }
            bias[((long)b * length + q) * length + k] = value;
        }
        return Tensor.FromArray(context, bias, rows, 1, length, length);
    }
}
