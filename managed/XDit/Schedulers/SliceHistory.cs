using XDit.Native;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>
/// What a multistep scheduler remembers from the previous step, kept per slice id (see
/// <see cref="IScheduler"/>): for each slice, the step it was last stepped at and the tensor it left.
/// The tensors belong to no <see cref="TensorScope"/>; this object frees them.
/// </summary>
internal sealed class SliceHistory : IDisposable
{
    readonly string _scheduler;
    readonly Dictionary<int, (int Step, Tensor Value)> _entries = new();

    public SliceHistory(string scheduler) => _scheduler = scheduler;

    /// <summary>The tensor slice <paramref name="slice"/> left at step <paramref name="stepIndex"/> − 1,
    /// or null when the slice has no history to continue: at step 0 (a new generation), and when the
    /// slice was never stepped (a generation that starts part-way, as img2img does; diffusers then
    /// starts with a first-order step too). A history from any other step means steps were skipped or
    /// repeated, which is an error.</summary>
    public Tensor? Previous(int slice, int stepIndex, Tensor like)
    {
        if (stepIndex == 0 || !_entries.TryGetValue(slice, out var entry)) return null;
        if (entry.Step != stepIndex - 1)
            throw new InvalidOperationException(
                $"{_scheduler}.Step: slice {slice} was last stepped at step {entry.Step}, so step {stepIndex} cannot follow it; " +
                "each slice must be stepped once per step, in order (call Reset() to start a new generation)");
        if (!Shapes.Equal(entry.Value.Shape, like.Shape) || !ReferenceEquals(entry.Value.Context, like.Context))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{_scheduler}.Step: slice {slice} is {like.ShapeString} on {like.Device} now but was " +
                $"{entry.Value.ShapeString} on {entry.Value.Device} at step {entry.Step}; a slice keeps its id, shape and device");
        return entry.Value;
    }

    /// <summary>Remembers <paramref name="value"/> as what slice <paramref name="slice"/> left at step
    /// <paramref name="stepIndex"/>, taking it out of its scope and freeing the one it replaces.</summary>
    public void Record(int slice, int stepIndex, Tensor value)
    {
        value.MoveToOuterScope(null);
        if (_entries.TryGetValue(slice, out var old)) old.Value.Dispose();
        _entries[slice] = (stepIndex, value);
    }

    public void Clear()
    {
        foreach (var entry in _entries.Values) entry.Value.Dispose();
        _entries.Clear();
    }

    public void Dispose() => Clear();
}
