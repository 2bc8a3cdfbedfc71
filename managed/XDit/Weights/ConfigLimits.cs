namespace XDit.Weights;

/// <summary>
/// Sizes a config may declare. A model is built from its config before any weight is read, so a hostile
/// config (a billion layers, a hidden size of 2³¹) must be refused here, with a message naming the file
/// and the field, instead of making the engine allocate what no file of weights could justify. The
/// bounds sit far above every released checkpoint.
/// </summary>
public static class ConfigLimits
{
    /// <summary>Layer counts (Flux has 57 blocks, T5 XXL 24).</summary>
    public const long MaxLayers = 1024;

    /// <summary>Vocabularies (T5's is 32k, multilingual ones a few 100k).</summary>
    public const long MaxVocabulary = 1 << 22;

    /// <summary>Positions, sample sizes and sequence lengths.</summary>
    public const long MaxPositions = 1 << 20;

    /// <summary>Widths, heads, channels and every other size.</summary>
    public const long MaxWidth = 1 << 17;

    /// <summary>Throws unless 1 ≤ <paramref name="value"/> ≤ the bound for a field of that kind (by its name).</summary>
    public static void RequireSize(string source, string name, long value)
    {
        var max = name.Contains("layers", StringComparison.Ordinal) ? MaxLayers
            : name.Contains("vocab", StringComparison.Ordinal) ? MaxVocabulary
            : name.Contains("position", StringComparison.Ordinal) || name.Contains("sample_size", StringComparison.Ordinal)
              || name.Contains("max_", StringComparison.Ordinal) ? MaxPositions
            : MaxWidth;
        if (value < 1 || value > max)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"{source}: {name} = {value} is outside 1 .. {max}");
    }
}
