using XDit.Nn;
using XDit.Tensors;

namespace XDit.Models.T5;

/// <summary>
/// A checkpoint seen with T5's tied token embedding resolved. In transformers,
/// <c>encoder.embed_tokens.weight</c> is the very tensor <c>shared.weight</c>, and checkpoints hold one name
/// or the other or both: <c>save_pretrained</c> keeps only <c>shared.weight</c>, older full-T5 files store
/// both. The encoder has the one parameter <c>shared.weight</c>; this source offers it under that name from
/// whichever is stored (<c>shared.weight</c> first) and hides the duplicate, unless the duplicate's
/// shape differs, which a tied pair cannot, so the loader reports it as unexpected.
/// </summary>
internal sealed class T5TiedEmbeddingSource : ITensorSource
{
    public const string Shared = "shared.weight";
    public const string EmbedTokens = "encoder.embed_tokens.weight";

    readonly ITensorSource _source;
    readonly string? _sharedFrom;
    readonly HashSet<string> _names;

    public T5TiedEmbeddingSource(ITensorSource source)
    {
        _source = source;
        _names = source.Names.ToHashSet();
        var hasShared = _names.Contains(Shared);
        var hasEmbedTokens = _names.Contains(EmbedTokens);
        _sharedFrom = hasShared ? Shared : hasEmbedTokens ? EmbedTokens : null;
        if (_sharedFrom is null) return;
        if (!hasShared || !hasEmbedTokens || source.Shape(Shared).SequenceEqual(source.Shape(EmbedTokens)))
            _names.Remove(EmbedTokens);
        _names.Add(Shared);
    }

    public IReadOnlyCollection<string> Names => _names;

    public IReadOnlyList<long> Shape(string name) => _source.Shape(Resolve(name));

    public Tensor Load(string name, DeviceContext context, DType dtype) => _source.Load(Resolve(name), context, dtype);

    string Resolve(string name) => name == Shared && _sharedFrom is not null ? _sharedFrom : name;
}
