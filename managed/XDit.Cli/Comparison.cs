namespace XDit.Cli;

/// <summary>How far a result is from its reference, as every check of the command line measures it.</summary>
public static class Comparison
{
    /// <summary>‖actual − expected‖ / ‖expected‖ in double over the elements the reference defines (NaN entries
    /// of <paramref name="expected"/> are skipped); the absolute norm when the reference is all zeros; +∞ when
    /// the lengths differ or <paramref name="actual"/> holds a NaN or an infinity where the reference has a
    /// value (an element left unwritten, or an overflow), so that no bound accepts it.</summary>
    public static double RelativeL2(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        if (actual.Length != expected.Length) return double.PositiveInfinity;
        double error = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            if (float.IsNaN(expected[i])) continue;
            if (!float.IsFinite(actual[i])) return double.PositiveInfinity;
            var d = (double)actual[i] - expected[i];
            error += d * d;
            norm += (double)expected[i] * expected[i];
        }
        return norm == 0 ? Math.Sqrt(error) : Math.Sqrt(error / norm);
    }
}
