using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The keys and values of one attention layer for the whole (joint) sequence, as PipeFusion keeps them
/// between bands: a band writes its fresh keys and values over its own tokens and its queries attend to
/// all of it, so the tokens of bands not yet computed in this step are the previous step's. The buffer
/// is laid out as the single-rank sequence — text in front (Flux) or behind (SD3) the image — whatever
/// wrote it (a whole warmup pass or a band), so the attention needs no concatenation and nothing changes
/// layout between the warmup and the patch steps.
/// </summary>
internal sealed class LayerKeyValueBuffer : IDisposable
{
    Tensor? _keys;
    Tensor? _values;

    public Tensor Keys => _keys ?? throw new InvalidOperationException("PipeFusion's key/value buffer is read before a whole pass filled it");
    public Tensor Values => _values ?? throw new InvalidOperationException("PipeFusion's key/value buffer is read before a whole pass filled it");

    /// <summary>Writes k, v [B, n, H, D] over tokens <paramref name="start"/> .. start + n − 1 of a
    /// <paramref name="sequence"/>-token buffer, which the first write must fill whole.</summary>
    public void Write(Tensor k, Tensor v, long start, long sequence)
    {
        if (_keys is null)
        {
            if (start != 0 || k.Size(1) != sequence)
                throw new InvalidOperationException("PipeFusion's key/value buffer is empty and a band cannot fill it: the first step must be a warmup step");
            _keys = k.Clone().MoveToOuterScope(null);
            _values = v.Clone().MoveToOuterScope(null);
            return;
        }
        using var keySlot = _keys.Narrow(1, start, k.Size(1));
        using var valueSlot = _values!.Narrow(1, start, v.Size(1));
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
    readonly Dictionary<(int Layer, int Attention), LayerKeyValueBuffer> _buffers = new();

    LayerKeyValueBuffer Buffer(int layer, int attention)
    {
        if (!_buffers.TryGetValue((layer, attention), out var buffer)) _buffers[(layer, attention)] = buffer = new LayerKeyValueBuffer();
        return buffer;
    }

    /// <summary>How layer <paramref name="layer"/>'s self-attention attends the tokens of <paramref name="band"/>.</summary>
    public ISequenceAttention For(int layer, PatchBand band) => new PatchAttention(Buffer(layer, 0), null, band, 0, false);

    /// <summary>How layer <paramref name="layer"/>'s joint attention (and SD3.5's image-only second
    /// attention) attends the tokens of <paramref name="band"/> next to <paramref name="textTokens"/> text
    /// tokens, in front of the image when <paramref name="textFirst"/>.</summary>
    public IJointSequenceAttention Joint(int layer, PatchBand band, long textTokens, bool textFirst) =>
        new PatchAttention(Buffer(layer, 0), new Lazy<LayerKeyValueBuffer>(() => Buffer(layer, 1)), band, textTokens, textFirst);

    public void Dispose()
    {
        foreach (var buffer in _buffers.Values) buffer.Dispose();
        _buffers.Clear();
    }
}

/// <summary>One band's attention under PipeFusion: its keys and values (and, on the step's first band, the
/// text's) go into the layer's buffer, its queries attend to the whole buffer.</summary>
internal sealed class PatchAttention(LayerKeyValueBuffer buffer, Lazy<LayerKeyValueBuffer>? imageOnly, PatchBand band, long textTokens, bool textFirst)
    : ISequenceAttention, IJointSequenceAttention
{
    public bool CarriesText => band.IsFirst;

    public Tensor Attend(Tensor q, Tensor k, Tensor v)
    {
        var text = CarriesText ? textTokens : 0;
        if (k.Size(1) != band.Tokens + text)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"PipeFusion attention of {band} expects {band.Tokens} image and {text} text tokens; got keys {k.ShapeString}");
        var sequence = band.SequenceTokens + textTokens;
        // Where the image and the text sit in the local tokens and in the buffer.
        var (localImage, localText) = textFirst ? (text, 0L) : (0L, band.Tokens);
        var (bufferImage, bufferText) = textFirst ? (textTokens, 0L) : (0L, band.SequenceTokens);
        if (band.IsWhole && text == textTokens) buffer.Write(k, v, 0, sequence);
        else
        {
            using (var imageKeys = k.Narrow(1, localImage, band.Tokens))
            using (var imageValues = v.Narrow(1, localImage, band.Tokens))
                buffer.Write(imageKeys, imageValues, bufferImage + band.TokenStart, sequence);
            if (text > 0)
            {
                using var textKeys = k.Narrow(1, localText, text);
                using var textValues = v.Narrow(1, localText, text);
                buffer.Write(textKeys, textValues, bufferText, sequence);
            }
        }
        return Ops.Attention.ScaledDotProduct(q, buffer.Keys, buffer.Values);
    }

    public Tensor AttendImage(Tensor q, Tensor k, Tensor v)
    {
        var images = imageOnly?.Value ?? throw new InvalidOperationException("this attention has no image-only buffer");
        images.Write(k, v, band.TokenStart, band.SequenceTokens);
        return Ops.Attention.ScaledDotProduct(q, images.Keys, images.Values);
    }
}
