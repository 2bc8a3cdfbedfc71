using XDit.Native;

namespace XDit.Tensors;

/// <summary>One native buffer shared by a tensor and all views of it; freed when the last of them
/// is disposed.</summary>
internal sealed class TensorStorage
{
    readonly BufferHandle _buffer;
    readonly IDisposable? _owner;
    int _references = 1;

    TensorStorage(DeviceContext context, BufferHandle buffer, nint data, ulong bytes, IDisposable? owner = null)
    {
        Context = context;
        _buffer = buffer;
        Data = data;
        Bytes = bytes;
        _owner = owner;
    }

    public DeviceContext Context { get; }
    public nint Data { get; }
    public ulong Bytes { get; }
    internal BufferHandle Buffer => _buffer;

    public static TensorStorage Allocate(DeviceContext context, ulong bytes)
    {
        NativeStatus.Check(NativeMethods.xdit_buffer_alloc(context.Handle, bytes, out var buffer));
        try
        {
            NativeStatus.Check(NativeMethods.xdit_buffer_data(buffer, out var data));
            return new TensorStorage(context, buffer, data, bytes);
        }
        catch
        {
            buffer.Dispose();
            throw;
        }
    }

    /// <summary>Storage over memory that <paramref name="owner"/> keeps valid (a memory-mapped file view
    /// on a CPU context, another context's device memory on the same GPU); it is disposed with the storage.</summary>
    public static TensorStorage Wrap(DeviceContext context, nint data, ulong bytes, IDisposable? owner)
    {
        NativeStatus.Check(NativeMethods.xdit_buffer_wrap(context.Handle, data, bytes, out var buffer));
        return new TensorStorage(context, buffer, data, bytes, owner);
    }

    public void AddReference()
    {
        if (Interlocked.Increment(ref _references) <= 1)
            throw new ObjectDisposedException(nameof(TensorStorage), "the tensor's memory was already freed");
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) != 0) return;
        _buffer.Dispose();
        _owner?.Dispose();
    }
}
