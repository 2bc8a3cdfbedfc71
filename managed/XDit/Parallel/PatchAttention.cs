using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The keys and values of one attention layer for the whole sequence, as PipeFusion keeps them between
/// patches: a patch writes its fresh keys and values over its own tokens and attends its queries to all
/// of it, so the tokens of bands not yet computed in this step are the previous step's. The buffer is
/// in sequence order whatever wrote it (a whole warmup pass or a band), so no layout changes between
/// the warmup and the patch steps.
/// </summary>
internal sealed class LayerKeyValueBuffer : IDisposable
{
    Tensor? _keys;
    Tensor? _values;

    public Tensor Keys => _keys ?? throw new InvalidOperationException("the key/value buffer is read before a whole pass filled it");
    public Tensor Values => _values!;

    /// <summary>Writes k, v [B, band tokens, H, D] over the band's tokens; the first write must be whole.</summary>
    public void Write(Tensor k, Tensor v, PatchBand band)
    {
        if (_keys is null)
        {
            if (!band.IsWhole)
                throw new InvalidOperationException($"PipeFusion's key/value buffer is empty and {band} cannot fill it: the first step must be a warmup step");
            _keys = Tensor.Empty(k.Context, k.DType, k.Shape.ToArray()).MoveToOuterScope(null);
            _values = Tensor.Empty(v.Context, v.DType, v.Shape.ToArray()).MoveToOuterScope(null);
        }
        using var keySlot = _keys.Narrow(1, band.TokenStart, band.Tokens);
        using var valueSlot = _values!.Narrow(1, band.TokenStart, band.Tokens);
        Ops.Elementwise.Copy(k, keySlot);
        Ops.Elementwise.Copy(v, valueSlot);
    }

    public void Dispose()
    {
        _keys?.Dispose();
        _values?.Dispose();
    }
}

/// <summary>The key/value buffers of one stage's attention layers, for one generation.</summary>
public sealed class KeyValueBuffers : IDisposable
{
    readonly Dictionary<int, LayerKeyValueBuffer> _layers = new();

    /// <summary>How layer <paramref name="layer"/> attends the tokens of <paramref name="band"/>.</summary>
    public ISequenceAttention For(int layer, PatchBand band)
    {
        if (!_layers.TryGetValue(layer, out var buffer)) _layers[layer] = buffer = new LayerKeyValueBuffer();
        return new PatchAttention(buffer, band);
    }

    public void Dispose()
    {
        foreach (var buffer in _layers.Values) buffer.Dispose();
        _layers.Clear();
    }
}

/// <summary>One band's self-attention under PipeFusion: its keys and values go into the layer's buffer,
/// its queries attend to the whole buffer.</summary>
internal sealed class PatchAttention(LayerKeyValueBuffer buffer, PatchBand band) : ISequenceAttention
{
    public Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        if (k.Size(1) != band.Tokens)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"PipeFusion attention of {band} ({band.Tokens} tokens) got keys {k.ShapeString}");
        buffer.Write(k, v, band);
        return Ops.Attention.ScaledDotProduct(q, buffer.Keys, buffer.Values);
    }
}
