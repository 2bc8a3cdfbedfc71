using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using XDit.Native;
using XDit.Tensors;

namespace XDit.Weights;

/// <summary>
/// A <c>.safetensors</c> file, memory-mapped and validated completely when opened (see
/// <see cref="SafetensorsHeader"/>), so that a broken or hostile file fails at <see cref="Open"/> with
/// an <see cref="XDitException"/> naming the file and tensor, never later with a crash or wrong data.
/// <para>
/// <see cref="Load"/> on a CPU context without a dtype conversion wraps the mapped bytes without a copy
/// when they are aligned to the element size (true of files written with 8-byte-padded headers and
/// tensors ordered by alignment, as the reference writer and <see cref="SafetensorsWriter"/> do). Each
/// such tensor owns a private copy-on-write mapping of its own bytes: it outlives this object, writing
/// into it (an in-place op on a weight) neither faults on read-only pages nor changes the file or what
/// later loads return, and pages nobody writes stay shared with the page cache (and with other ranks
/// loading the same file).
/// </para>
/// Opening does not lock the file against writers: a file truncated or rewritten by another process
/// while mapped is outside what this reader can defend against. Loads may run on several threads;
/// dispose only after they have returned.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    readonly MemoryMappedFile _map;
    readonly MemoryMappedViewAccessor _view;
    readonly SafetensorsHeader _header;
    readonly string[] _names;
    int _disposed;

    SafetensorsFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long dataStart, SafetensorsHeader header)
    {
        Path = path;
        _map = map;
        _view = view;
        DataStart = dataStart;
        _header = header;
        _names = header.Tensors.Keys.Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <summary>File offset of the data section: 8 + the header length.</summary>
    public long DataStart { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent), e.g. <c>{"format": "pt"}</c>.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _header.Metadata;

    /// <summary>The tensor names, sorted ordinally.</summary>
    public IReadOnlyList<string> Names => _names;

    public bool Contains(string name) => _header.Tensors.ContainsKey(name);

    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw WeightErrors.Invalid(path, "no such safetensors file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw WeightErrors.Invalid(path, $"cannot be read: {e.Message}");
        }
        MemoryMappedFile? map = null;
        MemoryMappedViewAccessor? view = null;
        try
        {
            var length = stream.Length;
            var headerLength = ReadHeaderLength(stream, length, path);
            // Copy-on-write, so that per-tensor views may be written (privately); the file is opened
            // read-only and never changes.
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: false);
            view = map.CreateViewAccessor(0, length, MemoryMappedFileAccess.Read);
            var dataStart = 8 + headerLength;
            var header = SafetensorsHeader.Parse(Span(Address(view) + 8, (int)headerLength), length - dataStart, path);
            return new SafetensorsFile(path, map, view, dataStart, header);
        }
        catch
        {
            view?.Dispose();
            if (map is not null) map.Dispose();
            else stream.Dispose();
            throw;
        }
    }

    static long ReadHeaderLength(FileStream stream, long length, string path)
    {
        if (length < 8)
            throw WeightErrors.Invalid(path, $"is {length} bytes long, too short for a safetensors file (an 8-byte header length, then the header)");
        Span<byte> field = stackalloc byte[8];
        stream.ReadExactly(field);
        var headerLength = BinaryPrimitives.ReadUInt64LittleEndian(field);
        if (headerLength > (ulong)(length - 8))
            throw WeightErrors.Invalid(path,
                $"declares a header of {headerLength} bytes, but only {length - 8} bytes follow the length field (truncated or not a safetensors file)");
        if (headerLength > SafetensorsHeader.MaxBytes)
            throw WeightErrors.Invalid(path, $"declares a header of {headerLength} bytes, more than the limit of {SafetensorsHeader.MaxBytes}");
        return (long)headerLength;
    }

    /// <summary>Dtype, shape and byte range of tensor <paramref name="name"/>.</summary>
    public TensorInfo Info(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _header.Tensors.TryGetValue(name, out var info)
            ? info
            : throw WeightErrors.InvalidTensor(Path, name, $"is not in the file (it holds {_names.Length} tensors)");
    }

    /// <summary>The stored bytes of tensor <paramref name="name"/> (little-endian, C order), valid while
    /// this object is not disposed. Tensors of 2 GiB or more do not fit a span: <see cref="Load"/> them.</summary>
    public ReadOnlySpan<byte> Bytes(string name)
    {
        ThrowIfDisposed();
        var info = Info(name);
        if (info.ByteLength > int.MaxValue)
            throw new XDitException(XditStatus.Unsupported,
                $"{Path}: tensor '{name}' ({info.ByteLength} bytes) is too large for a span; load it as a tensor");
        return DataSpan(info.DataBegin, (int)info.ByteLength);
    }

    /// <summary>
    /// Tensor <paramref name="name"/> on <paramref name="context"/>, in its stored dtype or converted to
    /// <paramref name="dtype"/>. Without a dtype, F64 loads as F32 and I16, I8 and U8 as I32 (see
    /// <see cref="SafetensorsDTypes.DefaultEngineDType"/>). Conversions: floats among themselves (round to
    /// nearest even; F64 rounds to F32 first), integers and BOOL to anything (to Bool: non-zero is true;
    /// I64 to I32 only when every value fits). Floats never convert to integers or Bool. BOOL data must
    /// hold only bytes 0 and 1.
    /// </summary>
    public Tensor Load(string name, DeviceContext context, DType? dtype = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        ThrowIfDisposed();
        var info = Info(name);
        var target = dtype ?? info.DType.DefaultEngineDType();
        CheckLoadable(info, target);
        var shape = info.Shape.ToArray();
        if (info.NumElements == 0) return Tensor.Empty(context, target, shape);

        var stored = info.DType.EngineDType();
        var source = stored is null
            ? Filled(Tensor.Empty(context, HostConversion.TargetOf(info.DType), shape),
                (part, start) => HostConversion.Write(info.DType, ElementSpan(info, start, part.NumElements), part))
            : TryWrap(info, stored.Value, context, shape)
              ?? Filled(Tensor.Empty(context, stored.Value, shape),
                  (part, start) => TensorBytes.Write(part, ElementSpan(info, start, part.NumElements)));
        if (source.DType == target) return source;
        using (source) return source.To(target);
    }

    void CheckLoadable(TensorInfo info, DType target)
    {
        var described = $"({info.DType.HeaderName()} {info.ShapeString})";
        if (info.DType.IsFloatingPoint() && !target.IsFloatingPoint())
            throw WeightErrors.InvalidTensor(Path, info.Name, $"{described} is floating point and cannot be loaded as {target.Name()}");
        if (info.Shape.Count > NativeConstants.XDIT_MAX_RANK)
            throw new XDitException(XditStatus.Unsupported,
                $"{Path}: tensor '{info.Name}' {described} has {info.Shape.Count} dimensions, more than the engine's {NativeConstants.XDIT_MAX_RANK}");
        if (info.DType == SafetensorsDType.Bool)
            ForEachDataChunk(info, (bytes, first) =>
            {
                var bad = bytes.IndexOfAnyExceptInRange((byte)0, (byte)1);
                if (bad >= 0)
                    throw WeightErrors.InvalidTensor(Path, info.Name, $"{described} holds the byte {bytes[bad]} at element {first + bad}; BOOL elements must be 0 or 1");
            });
        if (info.DType == SafetensorsDType.I64 && target == DType.I32)
            ForEachDataChunk(info, (bytes, first) =>
            {
                var values = MemoryMarshal.Cast<byte, long>(bytes);
                var bad = values.IndexOfAnyExceptInRange(int.MinValue, int.MaxValue);
                if (bad >= 0)
                    throw WeightErrors.InvalidTensor(Path, info.Name, $"{described} holds {values[bad]} at element {first + bad}, which does not fit i32");
            });
    }

    /// <summary>A tensor over a private mapping of the tensor's bytes (CPU contexts, aligned data), or
    /// null where the bytes must be copied.</summary>
    Tensor? TryWrap(TensorInfo info, DType stored, DeviceContext context, long[] shape)
    {
        if (context.Device.Kind != DeviceKind.Cpu || (DataStart + info.DataBegin) % stored.ElementSize() != 0) return null;
        MemoryMappedViewAccessor view;
        try
        {
            view = _map.CreateViewAccessor(DataStart + info.DataBegin, info.ByteLength, MemoryMappedFileAccess.CopyOnWrite);
        }
        catch (IOException)
        {
            // A writable private mapping counts against the commit limit under strict overcommit
            // (vm.overcommit_memory=2); where the system refuses it, a copy still works.
            return null;
        }
        try
        {
            return Tensor.Wrap(context, Address(view), stored, shape, view);
        }
        catch
        {
            view.Dispose();
            throw;
        }
    }

    /// <summary>Fills the new <paramref name="tensor"/> chunk by chunk (see
    /// <see cref="TensorBytes.ForEachChunk"/>); disposes it if that fails.</summary>
    static Tensor Filled(Tensor tensor, Action<Tensor, long> fillChunk)
    {
        try
        {
            TensorBytes.ForEachChunk(tensor, fillChunk);
            return tensor;
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
    }

    delegate void ChunkCheck(ReadOnlySpan<byte> bytes, long firstElement);

    void ForEachDataChunk(TensorInfo info, ChunkCheck check)
    {
        var size = info.DType.ElementSize();
        var perChunk = TensorBytes.ChunkBytes / size;
        for (long start = 0; start < info.NumElements; start += perChunk)
            check(ElementSpan(info, start, Math.Min(perChunk, info.NumElements - start)), start);
    }

    ReadOnlySpan<byte> ElementSpan(TensorInfo info, long firstElement, long count)
    {
        var size = info.DType.ElementSize();
        return DataSpan(info.DataBegin + firstElement * size, checked((int)(count * size)));
    }

    ReadOnlySpan<byte> DataSpan(long dataOffset, int length) => Span(Address(_view) + (nint)(DataStart + dataOffset), length);

    static nint Address(MemoryMappedViewAccessor view) =>
        view.SafeMemoryMappedViewHandle.DangerousGetHandle() + (nint)view.PointerOffset;

    /// <summary>A span over mapped memory (XDit has no unsafe code: the reference is formed from the
    /// address). The mapping must outlive the span.</summary>
    static ReadOnlySpan<byte> Span(nint address, int length) =>
        length == 0 ? default : MemoryMarshal.CreateReadOnlySpan(ref Unsafe.AddByteOffset(ref Unsafe.NullRef<byte>(), address), length);

    void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    /// <summary>Unmaps the file; tensors loaded without a copy keep their own mappings.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _view.Dispose();
        _map.Dispose();
    }

    public override string ToString() => $"SafetensorsFile({Path}, {_names.Length} tensors)";
}
