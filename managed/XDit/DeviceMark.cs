using XDit.Native;

namespace XDit;

/// <summary>
/// A point in a context's work (<see cref="DeviceContext.Mark"/>): a CUDA event recorded on the context's
/// stream, or on a CPU context (whose work is done when each call returns) the host's monotonic clock. The
/// time between two marks is the device's time for the work issued between them, as CUDA events measure it.
/// </summary>
public sealed class DeviceMark : IDisposable
{
    readonly MarkHandle _handle;

    internal DeviceMark(MarkHandle handle) => _handle = handle;

    /// <summary>The time from <paramref name="start"/> (an earlier mark of the same context) to this mark,
    /// waiting until the work before this mark has finished.</summary>
    public TimeSpan Since(DeviceMark start)
    {
        ArgumentNullException.ThrowIfNull(start);
        NativeStatus.Check(NativeMethods.xdit_mark_elapsed(start._handle, _handle, out var milliseconds));
        return TimeSpan.FromMilliseconds(milliseconds);
    }

    public void Dispose() => _handle.Dispose();
}
