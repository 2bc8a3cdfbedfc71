namespace XDit.Tensors;

/// <summary>
/// Frees every tensor created on this thread while the scope is the innermost one, when the scope is
/// disposed — the per-step temporaries of a model, deterministically, without finalizers. A tensor
/// that must outlive the scope is handed out with <see cref="Tensor.MoveToOuterScope"/>.
/// </summary>
public sealed class TensorScope : IDisposable
{
    [ThreadStatic] static TensorScope? _current;

    readonly TensorScope? _outer;
    readonly HashSet<Tensor> _tensors = new(ReferenceEqualityComparer.Instance);
    readonly int _threadId = Environment.CurrentManagedThreadId;
    bool _disposed;

    public TensorScope()
    {
        _outer = _current;
        _current = this;
    }

    /// <summary>The innermost scope of this thread, if any.</summary>
    public static TensorScope? Current => _current;

    internal TensorScope? Outer => _outer;

    /// <summary>How many tensors the scope will free.</summary>
    public int Count => _tensors.Count;

    internal void Add(Tensor tensor) => _tensors.Add(tensor);

    internal bool Remove(Tensor tensor) => _tensors.Remove(tensor);

    public void Dispose()
    {
        if (_disposed) return;
        if (Environment.CurrentManagedThreadId != _threadId)
            throw new InvalidOperationException("a TensorScope must be disposed on the thread that created it");
        if (_current != this)
            throw new InvalidOperationException("TensorScopes must be disposed innermost first");
        _disposed = true;
        _current = _outer;
        foreach (var tensor in _tensors.ToArray()) tensor.Dispose();
        _tensors.Clear();
    }
}
