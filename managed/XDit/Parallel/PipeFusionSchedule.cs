namespace XDit.Parallel;

/// <summary>
/// When each PipeFusion work item runs: the items are the denoising steps' bands in order (one whole
/// item per warmup step), and item k passes stage s at tick <c>Start(k) + s</c>. An item starts one tick
/// after the one before it, or later when its latent rows are not back from the last stage yet (the
/// previous step's item over the same rows leaves the last stage at <c>Start + stages − 1</c> and is at
/// stage 0 a tick later). Every rank computes the same schedule, so each knows which messages it sends
/// and receives, in which order and of what size.
/// </summary>
internal sealed class PipeFusionSchedule
{
    /// <param name="After">The previous step's item over the same latent rows, whose new rows this item
    /// embeds (null in the first step).</param>
    public sealed record Item(int Step, PatchBand Band, int Start, Item? After);

    readonly Dictionary<int, Item> _byStart = new();
    readonly List<Item> _items = [];

    public PipeFusionSchedule(int steps, int warmupSteps, IReadOnlyList<PatchBand> bands, PatchBand whole, int stages)
    {
        List<Item> previous = [];
        var next = 0;
        for (int step = 0; step < steps; step++)
        {
            var current = new List<Item>();
            var stepBands = step < warmupSteps ? [whole] : bands;
            for (int b = 0; b < stepBands.Count; b++)
            {
                var band = stepBands[b];
                // The previous step's item over these rows: the same band, or the last item when either is whole.
                var before = previous.Count == 0 ? null : band.IsWhole || previous.Count != stepBands.Count ? previous[^1] : previous[b];
                var start = Math.Max(next, before is null ? 0 : before.Start + stages);
                var item = new Item(step, band, start, before);
                current.Add(item);
                _byStart[start] = item;
                _items.Add(item);
                next = start + 1;
            }
            previous = current;
        }
        Ticks = next - 1 + stages;
    }

    public int Ticks { get; }

    /// <summary>Every item, in the order the stages compute them.</summary>
    public IReadOnlyList<Item> Items => _items;

    /// <summary>The item stage <paramref name="stage"/> computes at <paramref name="tick"/>, if any.</summary>
    public Item? At(int stage, int tick) => _byStart.GetValueOrDefault(tick - stage);
}
