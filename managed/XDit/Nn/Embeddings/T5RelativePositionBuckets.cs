using XDit.Tensors;

namespace XDit.Nn.Embeddings;

/// <summary>
/// T5's relative-position buckets (transformers' <c>T5Attention._relative_position_bucket</c>): the
/// index into the learned bias table for each (query, key) pair. Offsets below half the buckets (per
/// direction) get a bucket each; larger ones share log-spaced buckets up to
/// <c>maxDistance</c>, beyond which everything falls into the last bucket.
/// </summary>
/// <remarks>
/// transformers computes the logarithmic part in float32 and truncates it to an integer, so a float64
/// evaluation could land one bucket off where the float32 value sits just below an integer. The stages
/// are rounded to float32 here exactly as there, so the ids (and hence the biases) are the same.
/// </remarks>
public static class T5RelativePositionBuckets
{
    /// <summary>Bucket ids, row-major [queryLength, keyLength]: entry (q, k) is the bucket of the
    /// relative position k − q (key minus query, as T5's <c>compute_bias</c>).</summary>
    /// <param name="queryLength">Query tokens.</param>
    /// <param name="keyLength">Key tokens.</param>
    /// <param name="bidirectional">True for the encoder (half the buckets for each direction), false for
    /// the causal decoder (only keys before the query are distinguished).</param>
    /// <param name="numBuckets">Size of the bias table (32 in every T5).</param>
    /// <param name="maxDistance">Offset from which on all positions share the last bucket (128).</param>
    public static int[] Compute(int queryLength, int keyLength, bool bidirectional = true, int numBuckets = 32,
        int maxDistance = 128)
    {
        if (queryLength < 0) throw new ArgumentOutOfRangeException(nameof(queryLength), queryLength, "must not be negative");
        if (keyLength < 0) throw new ArgumentOutOfRangeException(nameof(keyLength), keyLength, "must not be negative");
        var result = new int[queryLength * keyLength];
        for (int q = 0; q < queryLength; q++)
        for (int k = 0; k < keyLength; k++)
            result[q * keyLength + k] = Bucket(k - q, bidirectional, numBuckets, maxDistance);
        return result;
    }

    /// <summary><see cref="Compute(int, int, bool, int, int)"/> as an i32 tensor [queryLength, keyLength] on <paramref name="context"/>.</summary>
    public static Tensor Compute(DeviceContext context, int queryLength, int keyLength, bool bidirectional = true,
        int numBuckets = 32, int maxDistance = 128) =>
        Tensor.FromArray(context, Compute(queryLength, keyLength, bidirectional, numBuckets, maxDistance), queryLength, keyLength);

    /// <summary>The bucket of one relative position (key index minus query index).</summary>
    public static int Bucket(int relativePosition, bool bidirectional = true, int numBuckets = 32, int maxDistance = 128)
    {
        var directionBuckets = bidirectional ? numBuckets / 2 : numBuckets;
        var exactBuckets = directionBuckets / 2;
        if (exactBuckets < 1)
            throw new ArgumentOutOfRangeException(nameof(numBuckets), numBuckets,
                bidirectional ? "a bidirectional table needs at least 4 buckets" : "a table needs at least 2 buckets");
        if (maxDistance <= exactBuckets)
            throw new ArgumentOutOfRangeException(nameof(maxDistance), maxDistance,
                $"must exceed the {exactBuckets} exact buckets, or the logarithmic buckets have no range");

        var bucket = 0;
        int distance;
        if (bidirectional)
        {
            if (relativePosition > 0) bucket = directionBuckets;
            distance = Math.Abs(relativePosition);
        }
        else
        {
            distance = Math.Max(-relativePosition, 0);
        }
        if (distance < exactBuckets) return bucket + distance;

        // float32 stages: distance / exact, log, / log(maxDistance / exact), × (buckets − exact), truncate.
        var ratio = (float)distance / exactBuckets;
        var logRatio = (float)Math.Log(ratio);
        var logRange = (float)Math.Log((double)maxDistance / exactBuckets);
        var scaled = logRatio / logRange * (directionBuckets - exactBuckets);
        var large = exactBuckets + (long)scaled;
        return bucket + (int)Math.Min(large, directionBuckets - 1);
    }
}
