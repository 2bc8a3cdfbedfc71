using XDit.Native;
using XDit.Nn;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Nn.Layers;

/// <summary>
/// A PyTorch <c>nn.Embedding</c>: a table [rows, dim] (<c>weight</c>) whose rows are looked up by index.
/// T5 uses it for its token embedding <c>shared</c> and block 0's <c>relative_attention_bias</c>
/// [buckets, heads]; CLIP for its token and position embeddings.
/// </summary>
public sealed class Embedding : Module
{
    public Embedding(long rows, long dim) => Weight = Param("weight", rows, dim);

    public Parameter Weight { get; }

    /// <summary>
    /// The rows of <paramref name="ids"/> (row-major [batch, length]) as [batch, length, dim] on the
    /// table's context, in its dtype. Every id is checked against the table first.
    /// </summary>
    /// <remarks>
    /// There is no native gather yet, so this is one strided copy per run of equal ids (a row broadcast
    /// over the run: the padding of a prompt is one copy). That is a few hundred small calls for the
    /// prompts of text encoders, negligible beside the layers; a long-sequence caller would want a
    /// native gather.
    /// </remarks>
    public Tensor Lookup(ReadOnlySpan<long> ids, long batch, long length)
    {
        var table = Weight.Value;
        var rows = table.Size(0);
        if (ids.Length != batch * length)
            throw new XDitException(XditStatus.InvalidArgument, $"{ids.Length} ids for a batch of {batch} × {length} tokens");
        for (int i = 0; i < ids.Length; i++)
            if (ids[i] < 0 || ids[i] >= rows)
                throw new XDitException(XditStatus.InvalidArgument,
                    $"token id {ids[i]} at [{i / length}, {i % length}] is outside the vocabulary of {rows} (weight {table.ShapeString})");

        var output = Tensor.Empty(table.Context, table.DType, batch, length, table.Size(1));
        try
        {
            using var flat = output.View(batch * length, table.Size(1));
            var start = 0;
            while (start < ids.Length)
            {
                var end = start + 1;
                while (end < ids.Length && ids[end] == ids[start]) end++;
                using var row = table.Narrow(0, ids[start], 1);
                using var repeated = row.Expand(end - start, table.Size(1));
                using var destination = flat.Narrow(0, start, end - start);
                Elementwise.Copy(repeated, destination);
                start = end;
            }
            return output;
        }
        catch
        {
            output.Dispose();
            throw;
        }
    }
}
