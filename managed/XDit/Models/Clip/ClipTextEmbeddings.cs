using XDit.Native;
using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Clip;

/// <summary>
/// transformers' <c>CLIPTextEmbeddings</c>: <c>token_embedding[ids] + position_embedding[0..L−1]</c>, the
/// learned absolute positions of a prompt of L ≤ <c>max_position_embeddings</c> tokens. The
/// <c>position_ids</c> buffer transformers keeps is just 0..L−1 and is not a parameter.
/// </summary>
public sealed class ClipTextEmbeddings : Module
{
    public ClipTextEmbeddings(ClipTextConfig config)
    {
        TokenEmbedding = Child("token_embedding", new Embedding(config.VocabSize, config.HiddenSize));
        PositionEmbedding = Child("position_embedding", new Embedding(config.MaxPositionEmbeddings, config.HiddenSize));
    }

    public Embedding TokenEmbedding { get; }
    public Embedding PositionEmbedding { get; }

    /// <summary>ids (row-major [batch, length]) → [batch, length, hidden].</summary>
    public Tensor Forward(ReadOnlySpan<long> ids, long batch, long length)
    {
        var positions = PositionEmbedding.Weight.Value;
        if (length > positions.Size(0))
            throw new XDitException(XditStatus.InvalidArgument,
                $"a sequence of {length} tokens is longer than the {positions.Size(0)} positions of position_embedding (weight {positions.ShapeString})");
        var embeddings = TokenEmbedding.Lookup(ids, batch, length);
        try
        {
            using var first = positions.Narrow(0, 0, length);
            Elementwise.Add(embeddings, first, embeddings);
            return embeddings;
        }
        catch
        {
            embeddings.Dispose();
            throw;
        }
    }
}
