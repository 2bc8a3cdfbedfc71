using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// What <see cref="ClipTextModel.Forward"/> returns, in the weights' dtype on their context: the fields of
/// transformers' <c>BaseModelOutputWithPooling</c> (<c>CLIPTextModel</c>) and, for the model with a
/// projection, <c>text_embeds</c> (<c>CLIPTextModelOutput</c>). Disposing it frees every tensor.
/// </summary>
public sealed class ClipTextOutput : IDisposable
{
    internal ClipTextOutput(Tensor lastHiddenState, Tensor pooledOutput, IReadOnlyList<int> pooledPositions,
        IReadOnlyList<Tensor> hiddenStates, Tensor? textEmbeds)
    {
        LastHiddenState = lastHiddenState;
        PooledOutput = pooledOutput;
        PooledPositions = pooledPositions;
        HiddenStates = hiddenStates;
        TextEmbeds = textEmbeds;
    }

    /// <summary>[batch, S, hidden]: the last layer's output after <c>final_layer_norm</c>.</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>[batch, hidden]: the row of <see cref="LastHiddenState"/> at each prompt's end of text
    /// (<c>pooler_output</c>; Flux's pooled CLIP embedding).</summary>
    public Tensor PooledOutput { get; }

    /// <summary>The position each row was pooled at (<see cref="ClipTextConfig.PooledPosition"/>).</summary>
    public IReadOnlyList<int> PooledPositions { get; }

    /// <summary>
    /// transformers' <c>hidden_states</c> when asked for, else empty: num_hidden_layers + 1 tensors
    /// [batch, S, hidden], the embeddings first, then each layer's output before <c>final_layer_norm</c>.
    /// SD3 and SDXL take <c>HiddenStates[^2]</c>, the penultimate layer's output.
    /// </summary>
    public IReadOnlyList<Tensor> HiddenStates { get; }

    /// <summary>[batch, projection_dim]: <c>text_projection(pooled)</c> for a model with a projection (SD3's
    /// and SDXL's pooled embedding), else null.</summary>
    public Tensor? TextEmbeds { get; }

    internal ClipTextOutput WithTextEmbeds(Tensor textEmbeds) =>
        new(LastHiddenState, PooledOutput, PooledPositions, HiddenStates, textEmbeds);

    /// <summary>Hands every tensor to the scope outside the current one (see <see cref="Tensor.MoveToOuterScope()"/>).</summary>
    internal ClipTextOutput MoveToOuterScope()
    {
        LastHiddenState.MoveToOuterScope();
        PooledOutput.MoveToOuterScope();
        foreach (var state in HiddenStates) state.MoveToOuterScope();
        TextEmbeds?.MoveToOuterScope();
        return this;
    }

    public void Dispose()
    {
        LastHiddenState.Dispose();
        PooledOutput.Dispose();
        foreach (var state in HiddenStates) state.Dispose();
        TextEmbeds?.Dispose();
    }
}
