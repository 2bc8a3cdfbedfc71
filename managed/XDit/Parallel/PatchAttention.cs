using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The keys and values of one attention layer for the whole (joint) sequence, as PipeFusion keeps them
/// between bands: a band writes its fresh keys and values over its own tokens and its queries attend to
/// all of it, so the tokens of bands not yet computed in this step are the previous step's. The buffer
/// is laid out as the single-rank sequence — text in front (Flux) or behind (SD3) the image — whatever
/// wrote it (a whole warmup pass or a band), so the attention needs no concatenation and nothing changes
/// layout between the warmup and the patch steps. With sequence parallelism it holds this rank's
/// Ulysses heads of every token.
/// </summary>
internal sealed class LayerKeyValueBuffer : IDisposable
{
    Tensor? _keys;
    Tensor? _values;

    public bool IsFilled => _keys is not null;
    public Tensor Keys => _keys ?? throw new InvalidOperationException("PipeFusion's key/value buffer is read before a whole pass filled it");
    public Tensor Values => _values ?? throw new InvalidOperationException("PipeFusion's key/value buffer is read before a whole pass filled it");

    /// <summary>Writes k, v [B, n, H, D] over tokens <paramref name="start"/> .. start + n − 1 of the
    /// <paramref name="sequence"/>-token buffer (made on the first write; the caller fills it whole then).</summary>
    public void Write(Tensor k, Tensor v, long start, long sequence)
    {
        if (_keys is null)
        {
            _keys = Tensor.Empty(k.Context, k.DType, k.Size(0), sequence, k.Size(2), k.Size(3)).MoveToOuterScope(null);
            _values = Tensor.Empty(v.Context, v.DType, v.Size(0), sequence, v.Size(2), v.Size(3)).MoveToOuterScope(null);
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

/// <summary>The key/value buffers of one stage's attention layers, for one generation; with
/// <paramref name="sequenceParallel"/>, the band's tokens are sharded over that group.</summary>
public sealed class KeyValueBuffers(SequenceParallelGroup? sequenceParallel = null) : IDisposable
{
    readonly Dictionary<(int Layer, int Attention), LayerKeyValueBuffer> _buffers = new();

    LayerKeyValueBuffer Buffer(int layer, int attention)
    {
        if (!_buffers.TryGetValue((layer, attention), out var buffer)) _buffers[(layer, attention)] = buffer = new LayerKeyValueBuffer();
        return buffer;
    }

    /// <summary>How layer <paramref name="layer"/>'s self-attention attends the tokens of <paramref name="band"/>.</summary>
    public ISequenceAttention For(int layer, PatchBand band) => new PatchAttention(Buffer(layer, 0), null, band, 0, false, sequenceParallel);

    /// <summary>How layer <paramref name="layer"/>'s joint attention (and SD3.5's image-only second
    /// attention) attends the tokens of <paramref name="band"/> next to <paramref name="textTokens"/> text
    /// tokens, in front of the image when <paramref name="textFirst"/>. With sequence parallelism every rank
    /// holds the whole text.</summary>
    public IJointSequenceAttention Joint(int layer, PatchBand band, long textTokens, bool textFirst) =>
        new PatchAttention(Buffer(layer, 0), new Lazy<LayerKeyValueBuffer>(() => Buffer(layer, 1)), band, textTokens, textFirst, sequenceParallel);

    public void Dispose()
    {
        foreach (var buffer in _buffers.Values) buffer.Dispose();
        _buffers.Clear();
    }
}

/// <summary>
/// One band's attention under PipeFusion: its keys and values (and, on the step's first band, the text's)
/// go into the layer's buffer, its queries attend to the whole buffer. With sequence parallelism the
/// band's image tokens are sharded over the group (padded as <see cref="SequenceParallelGroup.Shard"/>
/// pads) and the text is whole on every rank: a Ulysses all-to-all gives each rank the tokens of its
/// ring block for its heads, an all-gather over the Ring group completes the band's fresh keys and
/// values (only they move: the stale part of the buffer is already local), the queries attend to the
/// buffer of this rank's heads, and the inverse all-to-all returns the shard; the text's queries attend
/// with this rank's heads and their outputs are all-gathered over the Ulysses group.
/// </summary>
internal sealed class PatchAttention(LayerKeyValueBuffer buffer, Lazy<LayerKeyValueBuffer>? imageOnly, PatchBand band, long textTokens,
    bool textFirst, SequenceParallelGroup? group) : ISequenceAttention, IJointSequenceAttention
{
    public bool CarriesText => band.IsFirst;

    public Tensor Attend(Tensor q, Tensor k, Tensor v) => AttendTo(buffer, q, k, v, CarriesText ? textTokens : 0, textTokens);

    public Tensor AttendImage(Tensor q, Tensor k, Tensor v) =>
        AttendTo(imageOnly?.Value ?? throw new InvalidOperationException("this attention has no image-only buffer"), q, k, v, 0, 0);

    /// <param name="text">Text tokens in this pass's local k and v.</param>
    /// <param name="bufferText">Text tokens in the buffer.</param>
    Tensor AttendTo(LayerKeyValueBuffer target, Tensor q, Tensor k, Tensor v, long text, long bufferText)
    {
        var localImage = group?.ShardLength(band.Tokens) ?? band.Tokens;
        if (k.Size(1) != localImage + text)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"PipeFusion attention of {band} expects {localImage} image and {text} text tokens on this rank; got keys {k.ShapeString}");
        if (!target.IsFilled && !band.IsWhole)
            throw new InvalidOperationException("PipeFusion's key/value buffer is empty and a band cannot fill it: the first step must be a warmup step");
        using var scope = new TensorScope();
        var sequence = band.SequenceTokens + bufferText;
        var (localImageAt, localTextAt) = textFirst ? (text, 0L) : (0L, localImage);
        var (bufferImageAt, bufferTextAt) = textFirst ? (bufferText, 0L) : (0L, band.SequenceTokens);
        Tensor Image(Tensor t) => t.Narrow(1, localImageAt, localImage);
        Tensor Text(Tensor t) => t.Narrow(1, localTextAt, text);

        target.Write(Fresh(Image(k)), Fresh(Image(v)), bufferImageAt + band.TokenStart, sequence);
        if (text > 0)
        {
            Tensor Heads(Tensor t) => group?.OwnHeads(Text(t)) ?? Text(t);
            target.Write(Heads(k), Heads(v), bufferTextAt, sequence);
        }
        if (group is null) return Ops.Attention.ScaledDotProduct(q, target.Keys, target.Values).MoveToOuterScope();

        // Sharded: the image queries through the all-to-all, the whole text's with this rank's heads.
        var textQueries = text > 0 && q.Size(1) == k.Size(1);
        var imageOut = group.FromHeadShards(Ops.Attention.ScaledDotProduct(group.ToHeadShards(textQueries ? Image(q) : q), target.Keys, target.Values));
        if (!textQueries) return imageOut.MoveToOuterScope();
        var textOut = group.AllHeads(Ops.Attention.ScaledDotProduct(group.OwnHeads(Text(q)), target.Keys, target.Values));
        return (textFirst ? Ops.Layout.Cat(1, textOut, imageOut) : Ops.Layout.Cat(1, imageOut, textOut)).MoveToOuterScope();
    }

    /// <summary>This rank's shard of the band's fresh keys or values → the band's, in token order
    /// (this rank's Ulysses heads with sequence parallelism; the padding dropped).</summary>
    Tensor Fresh(Tensor shard) => group is null ? shard : group.GatherRing(group.ToHeadShards(shard)).Narrow(1, 0, band.Tokens);
}
