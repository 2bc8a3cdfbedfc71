namespace XDit.Text;

/// <summary>
/// A trie over byte strings with an integer value per key, walked one byte at a time: the lattice of
/// the unigram model follows every vocabulary piece that starts at a position with a single walk.
/// Nodes are numbered from the root (0); a child is found by hashing (node, byte).
/// </summary>
internal sealed class ByteTrie
{
    public const int NoNode = -1;
    public const int NoValue = -1;

    readonly Dictionary<int, int> _children = new();
    readonly List<int> _values = [NoValue];

    /// <summary>Adds <paramref name="key"/> unless it is there already (the first value wins, as
    /// SentencePiece rejects duplicate pieces anyway).</summary>
    public void Add(ReadOnlySpan<byte> key, int value)
    {
        var node = 0;
        foreach (var b in key)
        {
            var slot = Slot(node, b);
            if (!_children.TryGetValue(slot, out var child))
            {
                child = _values.Count;
                _values.Add(NoValue);
                _children.Add(slot, child);
            }
            node = child;
        }
        if (_values[node] == NoValue) _values[node] = value;
    }

    /// <summary>The child of <paramref name="node"/> along <paramref name="b"/>, or <see cref="NoNode"/>.</summary>
    public int Child(int node, byte b) => _children.TryGetValue(Slot(node, b), out var child) ? child : NoNode;

    /// <summary>The value of the key that ends at <paramref name="node"/>, or <see cref="NoValue"/>.</summary>
    public int ValueAt(int node) => _values[node];

    static int Slot(int node, byte b) => checked(node * 256 + b);
}
