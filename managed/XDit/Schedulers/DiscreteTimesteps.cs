namespace XDit.Schedulers;

/// <summary>The timestep spacing of diffusers' DDIM, DDPM and CogVideoX schedulers (one shared
/// <c>set_timesteps</c>): n integer timesteps out of T training timesteps.</summary>
internal static class DiscreteTimesteps
{
    /// <summary>
    /// <see cref="TimestepSpacing.Linspace"/>: <c>round(linspace(0, T − 1, n))</c> reversed;
    /// <see cref="TimestepSpacing.Leading"/>: multiples of <c>T // n</c> from n − 1 down to 0, plus
    /// <paramref name="stepsOffset"/> (HunyuanDiT: 981, 961, …, 1 for 50 steps);
    /// <see cref="TimestepSpacing.Trailing"/>: <c>round(arange(T, 0, −T/n)) − 1</c> (CogVideoX: 999, 979,
    /// …, 19 for 50 steps).
    /// </summary>
    public static long[] Spaced(string scheduler, TimestepSpacing spacing, int train, int steps, int stepsOffset)
    {
        StepArguments.CheckStepCount(scheduler, steps);
        if (steps > train)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{scheduler}.SetTimesteps: more steps than the {train} training timesteps");
        var timesteps = spacing switch
        {
            TimestepSpacing.Linspace => NumPyRanges.Linspace(0, train - 1, steps).Select(NumPyRanges.Round).Reverse().ToArray(),
            TimestepSpacing.Leading => Enumerable.Range(0, steps).Select(i => (long)i * (train / steps) + stepsOffset).Reverse().ToArray(),
            _ => NumPyRanges.Arange(train, 0, -(train / (double)steps)).Select(t => NumPyRanges.Round(t) - 1).ToArray(),
        };
        foreach (var t in timesteps)
            if (t < 0 || t >= train)
                throw new ArgumentException(
                    $"{scheduler}.SetTimesteps({steps}): {spacing} spacing with steps_offset {stepsOffset} gives timestep {t}, " +
                    $"outside the training timesteps 0 to {train - 1}");
        return timesteps;
    }
}
