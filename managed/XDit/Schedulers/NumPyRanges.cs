namespace XDit.Schedulers;

/// <summary>
/// NumPy's float64 <c>linspace</c> and <c>arange</c> with their exact arithmetic (NumPy 1.24), which
/// diffusers uses to space timesteps. The element formulas matter: the values are rounded to integer
/// timesteps afterwards, and a value that lands on .5 in one formula and a hair off it in another
/// rounds to a different timestep.
/// </summary>
internal static class NumPyRanges
{
    /// <summary><c>np.linspace(start, stop, count)</c>: element i is <c>i·step + start</c> with
    /// <c>step = (stop − start)/(count − 1)</c>, and the last element is <paramref name="stop"/> exactly.</summary>
    public static double[] Linspace(double start, double stop, int count)
    {
        var values = new double[count];
        if (count == 0) return values;
        var divisions = count - 1;
        var delta = stop - start;
        var step = divisions > 0 ? delta / divisions : double.NaN;
        for (int i = 0; i < count; i++)
        {
            if (divisions == 0) values[i] = i * delta + start;
            else if (step == 0) values[i] = i / (double)divisions * delta + start;
            else values[i] = i * step + start;
        }
        if (count > 1) values[^1] = stop;
        return values;
    }

    /// <summary><c>np.arange(start, stop, step)</c> in float64: <c>ceil((stop − start)/step)</c> elements;
    /// NumPy writes the first two, then fills element i as <c>start + i·δ</c> with δ re-derived as
    /// <c>(start + step) − start</c>, which can differ from <paramref name="step"/> in the last bit.</summary>
    public static double[] Arange(double start, double stop, double step)
    {
        var length = (int)Math.Max(0, Math.Ceiling((stop - start) / step));
        var values = new double[length];
        if (length == 0) return values;
        values[0] = start;
        if (length == 1) return values;
        values[1] = start + step;
        var delta = values[1] - start;
        for (int i = 2; i < length; i++) values[i] = start + i * delta;
        return values;
    }

    /// <summary><c>np.round</c>: to the nearest integer, ties to even.</summary>
    public static long Round(double value) => (long)Math.Round(value, MidpointRounding.ToEven);
}
