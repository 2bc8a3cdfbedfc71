namespace XDit.Text;

/// <summary>
/// The token ids of a batch of prompts, one row per prompt, right-padded to one length, with the
/// attention mask the text encoders take: 1 over a prompt's own tokens (its BOS and EOS included), 0 over
/// the padding. Both are <c>[batch, length]</c>, the I64 layout of transformers' <c>input_ids</c> and
/// <c>attention_mask</c>. Deconstructs as <c>var (ids, mask) = tokenizer.EncodeBatch(...)</c>.
/// </summary>
public sealed record TokenBatch(long[,] InputIds, long[,] AttentionMask)
{
    public int BatchSize => InputIds.GetLength(0);
    public int Length => InputIds.GetLength(1);

    /// <summary>Row <paramref name="index"/> of <see cref="InputIds"/>.</summary>
    public long[] Ids(int index) => Row(InputIds, index);

    /// <summary>Row <paramref name="index"/> of <see cref="AttentionMask"/>.</summary>
    public long[] Mask(int index) => Row(AttentionMask, index);

    /// <summary>The rows padded with <paramref name="padId"/> to <paramref name="length"/>, or to the
    /// longest row where that is longer.</summary>
    internal static TokenBatch Pad(IReadOnlyList<List<long>> rows, int length, long padId)
    {
        foreach (var row in rows) length = Math.Max(length, row.Count);
        var ids = new long[rows.Count, length];
        var mask = new long[rows.Count, length];
        for (int r = 0; r < rows.Count; r++)
        {
            for (int t = 0; t < length; t++)
            {
                var real = t < rows[r].Count;
                ids[r, t] = real ? rows[r][t] : padId;
                mask[r, t] = real ? 1 : 0;
            }
        }
        return new TokenBatch(ids, mask);
    }

    static long[] Row(long[,] values, int index)
    {
        if ((uint)index >= (uint)values.GetLength(0))
            throw new ArgumentOutOfRangeException(nameof(index), index, $"the batch has {values.GetLength(0)} rows");
        var row = new long[values.GetLength(1)];
        for (int t = 0; t < row.Length; t++) row[t] = values[index, t];
        return row;
    }
}
