using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextTransformer</c> (<c>text_model</c>): embeddings, the pre-norm
/// <see cref="ClipEncoderLayer"/>s under causal attention (<c>encoder.layers.{i}</c>), a final LayerNorm,
/// and pooling at each prompt's end-of-text token.
/// </summary>
public sealed class ClipTextTransformer : Module
{
    readonly ClipTextConfig _config;

    public ClipTextTransformer(ClipTextConfig config)
    {
        _config = config;
        Embeddings = Child("embeddings", new ClipTextEmbeddings(config));
        Layers = Enumerable.Range(0, config.NumHiddenLayers)
            .Select(i => Child($"encoder.layers.{i}", new ClipEncoderLayer(config))).ToArray();
        FinalLayerNorm = Child("final_layer_norm", new LayerNorm(config.HiddenSize, config.LayerNormEps, affine: true));
    }

    public ClipTextEmbeddings Embeddings { get; }
    public IReadOnlyList<ClipEncoderLayer> Layers { get; }
    public LayerNorm FinalLayerNorm { get; }

    /// <summary>ids row-major [batch, length], checked by the caller for shape; attentionMask as
    /// <see cref="ClipAttentionBias.Create"/> takes it. The output has no
    /// <see cref="ClipTextOutput.TextEmbeds"/>.</summary>
    internal ClipTextOutput Forward(long[] ids, int batch, int length, long[]? attentionMask, bool outputHiddenStates)
    {
        using var scope = new TensorScope();
        var hiddenStates = new List<Tensor>();
        // The embeddings first: they check the ids and the length before the [L, L] mask is built.
        var x = Embeddings.Forward(ids, batch, length);
        var bias = ClipAttentionBias.Create(x.Context, batch, length, attentionMask);
        foreach (var layer in Layers)
        {
            if (outputHiddenStates) hiddenStates.Add(x);
            var next = layer.Forward(x, bias);
            if (!outputHiddenStates) x.Dispose();
            x = next;
        }
        if (outputHiddenStates) hiddenStates.Add(x);
        var last = FinalLayerNorm.Forward(x);
        var positions = Enumerable.Range(0, batch).Select(b => _config.PooledPosition(ids.AsSpan(b * length, length))).ToArray();
        var pooled = Pool(last, positions);
        return new ClipTextOutput(last, pooled, positions, hiddenStates, textEmbeds: null).MoveToOuterScope();
    }

    /// <summary>last [B, S, hidden] → [B, hidden], row b taken at positions[b].</summary>
    static Tensor Pool(Tensor last, int[] positions)
    {
        var pooled = Tensor.Empty(last.Context, last.DType, positions.Length, last.Size(2));
        using var scope = new TensorScope();
        for (int b = 0; b < positions.Length; b++)
            Elementwise.Copy(last.Narrow(0, b, 1).Narrow(1, positions[b], 1), pooled.Narrow(0, b, 1).Unsqueeze(1));
        return pooled;
    }
}
