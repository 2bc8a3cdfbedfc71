using XDit.Ops;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>USP attention (Ulysses × Ring, in-process ranks) against an fp64 attention over the whole
/// sequence: token counts that the degree does not divide (the padding must be masked), MMDiT text split
/// with the image or replicated in front of or behind it, and the replicated outputs bit-identical on
/// every rank.</summary>
[TestFixture]
public class SequenceParallelAttentionTests
{
    const int Batch = 2, Heads = 4, HeadDim = 8, ImageTokens = 23;

    public enum Text { None, SplitFront, SplitRear, ReplicatedFront, ReplicatedRear, ReplicatedKeysOnly }

    static float[] Random(int seed, int tokens) => Reference.RandomFloats(new Random(seed), Batch * tokens * Heads * HeadDim);

    /// <summary>[B, a, H·D] and [B, b, H·D] row-major → [B, a + b, H·D].</summary>
    static float[] Concat(float[] first, int a, float[] second, int b)
    {
        const int row = Heads * HeadDim;
        var joined = new float[Batch * (a + b) * row];
        for (int n = 0; n < Batch; n++)
        {
            Array.Copy(first, n * a * row, joined, n * (a + b) * row, a * row);
            Array.Copy(second, n * b * row, joined, (n * (a + b) + a) * row, b * row);
        }
        return joined;
    }

    /// <summary>Tokens [start, start + count) of [B, total, H·D].</summary>
    static double[] Tokens(double[] x, int total, int start, int count)
    {
        const int row = Heads * HeadDim;
        var part = new double[Batch * count * row];
        for (int n = 0; n < Batch; n++) Array.Copy(x, (n * total + start) * row, part, n * count * row, count * row);
        return part;
    }

    [TestCase(2, 1, Text.None)]
    [TestCase(1, 2, Text.None)]
    [TestCase(4, 1, Text.None)]
    [TestCase(1, 3, Text.None)]
    [TestCase(2, 2, Text.None)]
    [TestCase(1, 4, Text.None)]
    [TestCase(2, 2, Text.SplitFront)]
    [TestCase(1, 4, Text.SplitRear)]
    [TestCase(2, 2, Text.ReplicatedFront)]
    [TestCase(4, 2, Text.ReplicatedRear)]
    [TestCase(1, 3, Text.ReplicatedFront)]
    [TestCase(2, 2, Text.ReplicatedKeysOnly)]
    public void MatchesTheWholeSequenceInFp64(int ulysses, int ring, Text text)
    {
        var degree = ulysses * ring;
        var split = text is Text.SplitFront or Text.SplitRear;
        var textTokens = text == Text.None ? 0 : split ? 2 * degree : 5;
        var textFirst = text is Text.SplitFront or Text.ReplicatedFront;
        var (qi, ki, vi) = (Random(1, ImageTokens), Random(2, ImageTokens), Random(3, ImageTokens));
        var (qt, kt, vt) = (Random(4, textTokens), Random(5, textTokens), Random(6, textTokens));
        var total = ImageTokens + textTokens;
        float[] Joint(float[] image, float[] t) => textFirst ? Concat(t, textTokens, image, ImageTokens) : Concat(image, ImageTokens, t, textTokens);
        var queries = text == Text.ReplicatedKeysOnly ? qi : Joint(qi, qt);
        var queryTokens = text == Text.ReplicatedKeysOnly ? ImageTokens : total;
        var (expected, _) = Reference.Attention(queries, Joint(ki, kt), Joint(vi, vt), null, null, Batch, queryTokens, total, Heads, HeadDim, HeadDim,
            1 / Math.Sqrt(HeadDim));
        var imageStart = textFirst && text != Text.ReplicatedKeysOnly ? textTokens : 0;
        var expectedImage = Tokens(expected, queryTokens, imageStart, ImageTokens);
        var expectedText = text is Text.None or Text.ReplicatedKeysOnly ? null : Tokens(expected, total, textFirst ? 0 : ImageTokens, textTokens);

        var results = InProcessWorld.Run(degree, world =>
        {
            using var context = Contexts.Cpu(threads: 1);
            using var scope = new TensorScope();
            var group = ProcessMesh.Create(world, new ParallelConfig { UlyssesDegree = ulysses, RingDegree = ring }).SequenceParallel!;
            Tensor Whole(float[] values, int tokens) => Tensor.FromArray(context, values, Batch, tokens, Heads, HeadDim);
            var (q, k, v) = (group.Shard(Whole(qi, ImageTokens)), group.Shard(Whole(ki, ImageTokens)), group.Shard(Whole(vi, ImageTokens)));
            if (split)
            {
                var shard = textTokens / degree;
                Tensor Local(Tensor image, float[] t)
                {
                    var mine = Whole(t, textTokens).Narrow(1, group.Rank * shard, shard);
                    return textFirst ? Layout.Cat(1, mine, image) : Layout.Cat(1, image, mine);
                }
                var attention = group.Attention(ImageTokens, shard, textFirst);
                var local = attention.Attend(Local(q, qt), Local(k, kt), Local(v, vt));
                var imagePart = local.Narrow(1, textFirst ? shard : 0, group.ShardLength(ImageTokens));
                var textPart = local.Narrow(1, textFirst ? 0 : group.ShardLength(ImageTokens), shard).Contiguous();
                var allText = Tensor.Empty(context, DType.F32, [degree, .. textPart.Shape.ToArray()]);
                group.All.AllGather(textPart, allText);
                var textOut = allText.Permute(1, 0, 2, 3, 4).Contiguous().ToArray<float>();
                return (Image: group.Gather(imagePart, ImageTokens).ToArray<float>(), Text: textOut);
            }
            ReplicatedTokens? replicated = text == Text.None ? null
                : new ReplicatedTokens(text == Text.ReplicatedKeysOnly ? null : Whole(qt, textTokens), Whole(kt, textTokens), Whole(vt, textTokens), textFirst);
            var (sharded, replicatedOut) = group.Attention(ImageTokens).Attend(q, k, v, replicated);
            return (Image: group.Gather(sharded, ImageTokens).ToArray<float>(), Text: replicatedOut?.ToArray<float>());
        }, TimeSpan.FromSeconds(30));

        for (int rank = 0; rank < degree; rank++)
        {
            var error = Reference.RelativeL2(results[rank].Image, expectedImage);
            Assert.That(error, Is.LessThan(2e-6), $"image tokens on rank {rank}");
            if (expectedText is null) Assert.That(results[rank].Text, Is.Null);
            else
            {
                Assert.That(Reference.RelativeL2(results[rank].Text!, expectedText), Is.LessThan(2e-6), $"text tokens on rank {rank}");
                Assert.That(results[rank].Text, Is.EqualTo(results[0].Text), $"text tokens on rank {rank} are bit-identical to rank 0's");
            }
        }
    }
}
