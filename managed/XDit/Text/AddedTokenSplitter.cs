namespace XDit.Text;

/// <summary>
/// Cuts the literal text of added tokens out of a prompt, as the slow transformers tokenizers do before
/// the model sees the text (<c>PreTrainedTokenizer.tokenize</c>): the leftmost occurrence of any added
/// token, the longest one where several start there (what transformers' <c>Trie.split</c> finds for
/// token sets like these, where no token occurs inside another), then the whitespace next to tokens
/// with <c>lstrip</c> / <c>rstrip</c> removed and empty pieces of text dropped. Matching is exact
/// (case-sensitive) and linear in the prompt length.
/// </summary>
internal sealed class AddedTokenSplitter
{
    /// <summary>A piece of the prompt: either text for the model (<see cref="Token"/> null) or an
    /// added token.</summary>
    public readonly record struct Segment(string Text, AddedToken? Token);

    readonly Dictionary<(int Node, char C), int> _children = new();
    readonly List<AddedToken?> _tokenAt = [null];

    public AddedTokenSplitter(IEnumerable<AddedToken> tokens)
    {
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0) continue;
            var node = 0;
            foreach (var c in token.Content)
            {
                if (!_children.TryGetValue((node, c), out var child))
                {
                    child = _tokenAt.Count;
                    _tokenAt.Add(null);
                    _children.Add((node, c), child);
                }
                node = child;
            }
            _tokenAt[node] ??= token;
        }
    }

    public List<Segment> Split(string text)
    {
        var pieces = new List<Segment>();
        var textStart = 0;
        var i = 0;
        while (i < text.Length)
        {
            var token = LongestTokenAt(text, i);
            if (token is null)
            {
                i++;
                continue;
            }
            if (i > textStart) pieces.Add(new Segment(text[textStart..i], null));
            pieces.Add(new Segment(token.Content, token));
            i += token.Content.Length;
            textStart = i;
        }
        if (textStart < text.Length) pieces.Add(new Segment(text[textStart..], null));

        for (int k = 0; k < pieces.Count; k++)
        {
            if (pieces[k].Token is not { } token) continue;
            if (token.RStrip && k + 1 < pieces.Count && pieces[k + 1].Token is null)
                pieces[k + 1] = pieces[k + 1] with { Text = PythonText.TrimStart(pieces[k + 1].Text) };
            if (token.LStrip && k > 0 && pieces[k - 1].Token is null)
                pieces[k - 1] = pieces[k - 1] with { Text = PythonText.TrimEnd(pieces[k - 1].Text) };
        }
        pieces.RemoveAll(p => p.Text.Length == 0);
        return pieces;
    }

    AddedToken? LongestTokenAt(string text, int start)
    {
        AddedToken? longest = null;
        var node = 0;
        for (int i = start; i < text.Length && _children.TryGetValue((node, text[i]), out node); i++)
            longest = _tokenAt[node] ?? longest;
        return longest;
    }
}
