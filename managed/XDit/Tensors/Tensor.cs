using System.Runtime.InteropServices;
using XDit.Native;

namespace XDit.Tensors;

/// <summary>
/// A strided view of device (or host, for CPU contexts) memory owned by a <see cref="DeviceContext"/>.
/// Views (<see cref="View"/>, <see cref="Transpose"/>, <see cref="Narrow"/>, <see cref="Slice"/>,
/// <see cref="Expand"/>, ...) share the memory without copying; every tensor, view or not, is disposed
/// by its owner (or by the <see cref="TensorScope"/> it was created in), and the memory is freed with
/// the last one. Shapes and strides count elements.
/// </summary>
public sealed class Tensor : IDisposable
{
    readonly TensorStorage _storage;
    readonly long[] _shape;
    readonly long[] _strides;
    readonly long _offset;
    TensorScope? _scope;
    int _disposed;

    Tensor(TensorStorage storage, DType dtype, long[] shape, long[] strides, long offset)
    {
        _storage = storage;
        DType = dtype;
        _shape = shape;
        _strides = strides;
        _offset = offset;
        _scope = TensorScope.Current;
        _scope?.Add(this);
    }

    public DType DType { get; }
    public DeviceContext Context => _storage.Context;
    public Device Device => _storage.Context.Device;
    public int Rank => _shape.Length;
    public ReadOnlySpan<long> Shape => _shape;
    public ReadOnlySpan<long> Strides => _strides;

    /// <summary>Element offset of this view into its memory.</summary>
    public long Offset => _offset;

    public long NumElements => Shapes.Product(_shape);
    public bool IsContiguous => Shapes.IsContiguous(_shape, _strides);
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Size of dimension <paramref name="dim"/>; negative values count from the end.</summary>
    public long Size(int dim) => _shape[Shapes.NormalizeDim(dim, Rank)];

    public long Stride(int dim) => _strides[Shapes.NormalizeDim(dim, Rank)];

    // ---- creation -------------------------------------------------------------------------------

    /// <summary>A new contiguous tensor with undefined contents.</summary>
    public static Tensor Empty(DeviceContext context, DType dtype, params long[] shape)
    {
        ArgumentNullException.ThrowIfNull(context);
        Shapes.Validate(shape);
        var bytes = checked((ulong)Shapes.Product(shape) * (ulong)dtype.ElementSize());
        var storage = TensorStorage.Allocate(context, bytes);
        return new Tensor(storage, dtype, (long[])shape.Clone(), Shapes.ContiguousStrides(shape), 0);
    }

    public static Tensor Full(DeviceContext context, DType dtype, double value, params long[] shape)
    {
        var t = Empty(context, dtype, shape);
        try
        {
            Ops.Elementwise.Fill(t, value);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public static Tensor Zeros(DeviceContext context, DType dtype, params long[] shape) => Full(context, dtype, 0, shape);

    /// <summary>A new tensor holding a copy of <paramref name="data"/> (row-major), whose element type
    /// decides the dtype.</summary>
    public static Tensor FromSpan<T>(DeviceContext context, ReadOnlySpan<T> data, params long[] shape) where T : unmanaged
    {
        var t = Empty(context, DTypeExtensions.Of<T>(), shape);
        try
        {
            t.CopyFrom(data);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    public static Tensor FromArray<T>(DeviceContext context, T[] data, params long[] shape) where T : unmanaged =>
        FromSpan<T>(context, data, shape);

    /// <summary>A contiguous tensor over memory that <paramref name="owner"/> keeps valid, without a copy:
    /// host memory on a CPU context (a memory-mapped weight file), or device memory of a CUDA context's
    /// own device (another context's weights); the owner is disposed with the last view.</summary>
    internal static Tensor Wrap(DeviceContext context, nint data, DType dtype, long[] shape, IDisposable? owner)
    {
        Shapes.Validate(shape);
        var bytes = checked((ulong)Shapes.Product(shape) * (ulong)dtype.ElementSize());
        var storage = TensorStorage.Wrap(context, data, bytes, owner);
        return new Tensor(storage, dtype, (long[])shape.Clone(), Shapes.ContiguousStrides(shape), 0);
    }

    // ---- host copies ----------------------------------------------------------------------------

    /// <summary>Copies <paramref name="source"/> (row-major, one element per element of this view)
    /// into this tensor or view.</summary>
    public void CopyFrom<T>(ReadOnlySpan<T> source) where T : unmanaged
    {
        CheckHostType<T>();
        if (source.Length != NumElements)
            throw new ArgumentException($"{source.Length} elements given for a tensor of {NumElements} {ShapeString}");
        if (IsContiguous)
        {
            Write(MemoryMarshal.AsBytes(source));
            return;
        }
        using var staging = Empty(Context, DType, _shape);
        staging.Write(MemoryMarshal.AsBytes(source));
        Ops.Elementwise.Copy(staging, this);
    }

    /// <summary>Copies this tensor's elements (row-major) into <paramref name="destination"/>.</summary>
    public void CopyTo<T>(Span<T> destination) where T : unmanaged
    {
        CheckHostType<T>();
        if (destination.Length != NumElements)
            throw new ArgumentException($"{destination.Length} elements of room for a tensor of {NumElements} {ShapeString}");
        if (IsContiguous)
        {
            Read(MemoryMarshal.AsBytes(destination));
            return;
        }
        using var packed = Contiguous();
        packed.Read(MemoryMarshal.AsBytes(destination));
    }

    public T[] ToArray<T>() where T : unmanaged
    {
        var result = new T[NumElements];
        CopyTo<T>(result);
        return result;
    }

    void Write(ReadOnlySpan<byte> bytes)
    {
        ThrowIfDisposed();
        NativeStatus.Check(NativeMethods.xdit_buffer_write(_storage.Buffer, ByteOffset, in MemoryMarshal.GetReference(bytes), (ulong)bytes.Length));
    }

    void Read(Span<byte> bytes)
    {
        ThrowIfDisposed();
        NativeStatus.Check(NativeMethods.xdit_buffer_read(_storage.Buffer, ByteOffset, ref MemoryMarshal.GetReference(bytes), (ulong)bytes.Length));
    }

    ulong ByteOffset => (ulong)(_offset * DType.ElementSize());

    void CheckHostType<T>() where T : unmanaged
    {
        var hostType = DTypeExtensions.Of<T>();
        if (hostType != DType)
            throw new ArgumentException(
                $"the tensor is {DType.Name()} but the host elements are {typeof(T).Name}; convert with To(DType.{hostType}) first");
    }

    // ---- views ----------------------------------------------------------------------------------

    /// <summary>A view with another shape over the same contiguous elements; one dimension may be -1.</summary>
    public Tensor View(params long[] shape)
    {
        var resolved = Shapes.InferShape(shape, NumElements);
        if (!IsContiguous)
            throw new InvalidOperationException(
                $"View{Shapes.ToString(resolved)} needs a contiguous tensor, this one is {ShapeString} with strides " +
                $"{Shapes.ToString(_strides)}; use Reshape (which copies) or Contiguous() first");
        return NewView(resolved, Shapes.ContiguousStrides(resolved), _offset);
    }

    /// <summary>Like <see cref="View"/>, but copies when the layout does not allow a view.</summary>
    public Tensor Reshape(params long[] shape)
    {
        if (IsContiguous) return View(shape);
        using var packed = Contiguous();
        return packed.View(shape);
    }

    public Tensor Transpose(int dim0, int dim1)
    {
        dim0 = Shapes.NormalizeDim(dim0, Rank);
        dim1 = Shapes.NormalizeDim(dim1, Rank);
        var shape = (long[])_shape.Clone();
        var strides = (long[])_strides.Clone();
        (shape[dim0], shape[dim1]) = (shape[dim1], shape[dim0]);
        (strides[dim0], strides[dim1]) = (strides[dim1], strides[dim0]);
        return NewView(shape, strides, _offset);
    }

    /// <summary>A view with dimensions reordered: result dim i is this tensor's dim <c>dims[i]</c>.</summary>
    public Tensor Permute(params int[] dims)
    {
        if (dims.Length != Rank) throw new ArgumentException($"Permute needs {Rank} dimensions, got {dims.Length}");
        var seen = new bool[Rank];
        var shape = new long[Rank];
        var strides = new long[Rank];
        for (int i = 0; i < Rank; i++)
        {
            var d = Shapes.NormalizeDim(dims[i], Rank);
            if (seen[d]) throw new ArgumentException($"Permute: dimension {d} appears twice");
            seen[d] = true;
            shape[i] = _shape[d];
            strides[i] = _strides[d];
        }
        return NewView(shape, strides, _offset);
    }

    /// <summary>Elements <c>start .. start+length-1</c> of dimension <paramref name="dim"/>.</summary>
    public Tensor Narrow(int dim, long start, long length) => Slice(dim, start, start + length);

    /// <summary>Elements <c>start, start+step, ... &lt; end</c> of dimension <paramref name="dim"/>.</summary>
    public Tensor Slice(int dim, long start, long end, long step = 1)
    {
        dim = Shapes.NormalizeDim(dim, Rank);
        if (step <= 0) throw new ArgumentOutOfRangeException(nameof(step), step, "step must be positive");
        if (start < 0 || end < start || end > _shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start),
                $"range [{start}, {end}) is outside dimension {dim} of size {_shape[dim]} in {ShapeString}");
        var shape = (long[])_shape.Clone();
        var strides = (long[])_strides.Clone();
        shape[dim] = (end - start + step - 1) / step;
        strides[dim] = _strides[dim] * step;
        return NewView(shape, strides, _offset + start * _strides[dim]);
    }

    /// <summary>A view of size 1 inserted at <paramref name="dim"/>.</summary>
    public Tensor Unsqueeze(int dim)
    {
        dim = Shapes.NormalizeDim(dim, Rank + 1);
        var shape = _shape.ToList();
        var strides = _strides.ToList();
        shape.Insert(dim, 1);
        strides.Insert(dim, dim < Rank ? _strides[dim] * _shape[dim] : 1);
        return NewView(shape.ToArray(), strides.ToArray(), _offset);
    }

    /// <summary>A view without dimension <paramref name="dim"/>, which must have size 1.</summary>
    public Tensor Squeeze(int dim)
    {
        dim = Shapes.NormalizeDim(dim, Rank);
        if (_shape[dim] != 1)
            throw new ArgumentException($"cannot squeeze dimension {dim} of size {_shape[dim]} in {ShapeString}");
        var shape = _shape.ToList();
        var strides = _strides.ToList();
        shape.RemoveAt(dim);
        strides.RemoveAt(dim);
        return NewView(shape.ToArray(), strides.ToArray(), _offset);
    }

    /// <summary>A broadcast view: size-1 dimensions (and new leading ones) repeat with stride 0.</summary>
    public Tensor Expand(params long[] shape)
    {
        if (shape.Length < Rank)
            throw new ArgumentException($"cannot expand {ShapeString} to fewer dimensions {Shapes.ToString(shape)}");
        var strides = new long[shape.Length];
        var lead = shape.Length - Rank;
        for (int i = 0; i < shape.Length; i++)
        {
            if (i < lead)
            {
                strides[i] = 0;
                continue;
            }
            var own = _shape[i - lead];
            if (own == shape[i]) strides[i] = _strides[i - lead];
            else if (own == 1) strides[i] = 0;
            else throw new ArgumentException($"cannot expand {ShapeString} to {Shapes.ToString(shape)}");
        }
        return NewView((long[])shape.Clone(), strides, _offset);
    }

    /// <summary>A contiguous tensor with these elements: a view when already contiguous, else a copy.</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return NewView((long[])_shape.Clone(), Shapes.ContiguousStrides(_shape), _offset);
        return To(DType);
    }

    /// <summary>A new contiguous copy converted to <paramref name="dtype"/>.</summary>
    public Tensor To(DType dtype)
    {
        var result = Empty(Context, dtype, _shape);
        try
        {
            Ops.Elementwise.Copy(this, result);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
    }

    public Tensor Clone() => To(DType);

    /// <summary>Another handle on the same elements that belongs to no scope: it keeps the memory alive until
    /// it is disposed, whatever becomes of this one (what a transfer in flight holds on to).</summary>
    internal Tensor Share() => NewView((long[])_shape.Clone(), (long[])_strides.Clone(), _offset).MoveToOuterScope(null);

    Tensor NewView(long[] shape, long[] strides, long offset)
    {
        ThrowIfDisposed();
        _storage.AddReference();
        return new Tensor(_storage, DType, shape, strides, offset);
    }

    // ---- native boundary ------------------------------------------------------------------------

    /// <summary>The descriptor native ops receive.</summary>
    internal XditTensor Descriptor
    {
        get
        {
            ThrowIfDisposed();
            return XditTensor.Create(DataAddress, DType.ToNative(), _shape, _strides);
        }
    }

    /// <summary>The address of the first element (host memory on a CPU context, device memory otherwise).</summary>
    internal nint DataAddress
    {
        get
        {
            ThrowIfDisposed();
            return _storage.Data + (nint)(_offset * DType.ElementSize());
        }
    }

    // ---- lifetime -------------------------------------------------------------------------------

    /// <summary>Hands this tensor from the scope it was created in to that scope's outer scope (or to
    /// no scope, when given null or when there is none), so it survives the inner scope.</summary>
    public Tensor MoveToOuterScope() => MoveToOuterScope(_scope?.Outer);

    internal Tensor MoveToOuterScope(TensorScope? target)
    {
        _scope?.Remove(this);
        _scope = target;
        _scope?.Add(this);
        return this;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _scope?.Remove(this);
        _scope = null;
        _storage.Release();
    }

    void ThrowIfDisposed()
    {
        if (IsDisposed) throw new ObjectDisposedException(nameof(Tensor), $"the {DType.Name()} tensor {ShapeString} was disposed");
    }

    public string ShapeString => Shapes.ToString(_shape);

    public override string ToString() => $"Tensor({DType.Name()} {ShapeString} on {Device})";
}
