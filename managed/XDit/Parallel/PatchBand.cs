namespace XDit.Parallel;

/// <summary>
/// What one PipeFusion work item covers: token rows <see cref="TokenRowStart"/> ..
/// <see cref="TokenRowStart"/> + <see cref="TokenRows"/> − 1 of a token grid <see cref="GridRows"/> ×
/// <see cref="GridWidth"/> (row-major, so a band is one contiguous run of tokens), a token row being
/// <see cref="PatchSize"/> latent rows. Band <see cref="Index"/> of the latent's row bands, or the whole
/// latent in a warmup step.
/// </summary>
public sealed record PatchBand(int Index, long TokenRowStart, long TokenRows, long GridRows, long GridWidth, int PatchSize)
{
    /// <summary>The whole latent (a warmup step).</summary>
    public bool IsWhole => TokenRows == GridRows;

    /// <summary>The band that starts the latent: in MMDiT models the one that computes the text stream.</summary>
    public bool IsFirst => TokenRowStart == 0;

    public long TokenStart => TokenRowStart * GridWidth;
    public long Tokens => TokenRows * GridWidth;
    public long SequenceTokens => GridRows * GridWidth;
    public long LatentRowStart => TokenRowStart * PatchSize;
    public long LatentRows => TokenRows * PatchSize;

    /// <summary>The whole latent of a token grid.</summary>
    public static PatchBand Whole(long gridRows, long gridWidth, int patchSize) => new(0, 0, gridRows, gridRows, gridWidth, patchSize);

    public override string ToString() => IsWhole ? "the whole latent" : $"band {Index} (token rows {TokenRowStart}..{TokenRowStart + TokenRows - 1})";
}
