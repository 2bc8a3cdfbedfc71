using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Fill, strided copies and broadcast arithmetic against values computed here.</summary>
[TestFixture]
public class ElementwiseTests
{
    [Test]
    public void FillWritesEveryElementOfAView()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var t = Tensor.Zeros(context, DType.F32, 4, 5);
        Elementwise.Fill(t.Slice(1, 1, 5, step: 2), 7);
        var values = t.ToArray<float>();
        for (int r = 0; r < 4; r++)
        for (int c = 0; c < 5; c++)
            Assert.That(values[r * 5 + c], Is.EqualTo(c % 2 == 1 ? 7f : 0f), $"({r}, {c})");
        foreach (var dtype in Enum.GetValues<DType>())
        {
            using var u = Tensor.Full(context, dtype, 1, 3);
            Assert.That(u.To(DType.F32).ToArray<float>(), Is.EqualTo(new[] { 1f, 1f, 1f }), dtype.ToString());
        }
    }

    [Test]
    public void PermutedCopyMatchesIndexArithmetic()
    {
        using var context = Contexts.Cpu(threads: 2);
        using var scope = new TensorScope();
        const int a = 3, b = 4, c = 5, d = 6;
        var source = Enumerable.Range(0, a * b * c * d).Select(i => (float)i).ToArray();
        var t = Tensor.FromArray(context, source, a, b, c, d);
        var permuted = t.Permute(2, 0, 3, 1); // [c, a, d, b]
        Assert.That(permuted.IsContiguous, Is.False);
        var values = permuted.Contiguous().ToArray<float>();
        int index = 0;
        for (int k = 0; k < c; k++)
        for (int i = 0; i < a; i++)
        for (int l = 0; l < d; l++)
        for (int j = 0; j < b; j++)
            Assert.That(values[index++], Is.EqualTo(source[((i * b + j) * c + k) * d + l]));
    }

    /// <summary>In-process ranks copy from each other's contexts (xdit_copy_from): the same conversion and
    /// strides as a copy within one context.</summary>
    [Test]
    public void CopyFromAnotherContextEqualsACopyWithinOne()
    {
        using var mine = Contexts.Cpu(threads: 1);
        using var peer = Contexts.Cpu(threads: 2);
        using var scope = new TensorScope();
        var values = Reference.RandomFloats(new Random(3), 4 * 5 * 6);
        var source = Tensor.FromArray(peer, values, 4, 5, 6).To(DType.BF16).Permute(2, 0, 1);
        var across = Tensor.Full(mine, DType.F32, double.NaN, 6, 4, 5);
        Elementwise.Copy(source, across);
        var within = Tensor.Empty(peer, DType.F32, 6, 4, 5);
        Elementwise.Copy(source, within);
        Assert.That(across.ToArray<float>(), Is.EqualTo(within.ToArray<float>()));
        Assert.That(within.ToArray<float>()[1], Is.EqualTo((float)(BFloat16)values[6]));
    }

    [Test]
    public void CopyIntoAStridedOutputLeavesTheRestAlone()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var big = Tensor.Full(context, DType.F32, -1, 6, 6);
        var block = Tensor.FromArray(context, Enumerable.Range(0, 9).Select(i => (float)i).ToArray(), 3, 3);
        Elementwise.Copy(block, big.Slice(0, 1, 6, step: 2).Slice(1, 0, 6, step: 2));
        var values = big.ToArray<float>();
        for (int r = 0; r < 6; r++)
        for (int c = 0; c < 6; c++)
        {
            var expected = r % 2 == 1 && c % 2 == 0 ? (r / 2) * 3 + c / 2 : -1f;
            Assert.That(values[r * 6 + c], Is.EqualTo(expected), $"({r}, {c})");
        }
    }

    [TestCase(DType.F32)]
    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void BroadcastAddAndMul(DType dtype)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var random = new Random(9);
        var x = Reference.RandomFloats(random, 2 * 3 * 4);
        var y = Reference.RandomFloats(random, 4);
        var tx = Tensor.FromArray(context, x, 2, 3, 4).To(dtype);
        var ty = Tensor.FromArray(context, y, 4).To(dtype);
        // The reference applies the same rounding the storage does, to inputs and result.
        var rx = tx.To(DType.F32).ToArray<float>();
        var ry = ty.To(DType.F32).ToArray<float>();
        var sum = Elementwise.Add(tx, ty).To(DType.F32).ToArray<float>();
        var product = Elementwise.Mul(ty, tx).To(DType.F32).ToArray<float>();
        using var rounding = Tensor.Empty(context, DType.F32, 1);
        for (int i = 0; i < x.Length; i++)
        {
            Assert.That(sum[i], Is.EqualTo(Round(context, rx[i] + ry[i % 4], dtype)), $"sum {i}");
            Assert.That(product[i], Is.EqualTo(Round(context, rx[i] * ry[i % 4], dtype)), $"product {i}");
        }
    }

    static float Round(DeviceContext context, float value, DType dtype) => dtype switch
    {
        DType.F16 => (float)(Half)value,
        DType.BF16 => (BFloat16)value,
        _ => value,
    };

    [Test]
    public void InPlaceAddOnTheSameTensor()
    {
        using var context = Contexts.Cpu();
        using var t = Tensor.FromArray(context, new[] { 1f, 2f, 3f }, 3);
        Elementwise.Add(t, t, t);
        Assert.That(t.ToArray<float>(), Is.EqualTo(new[] { 2f, 4f, 6f }));
    }

    [Test]
    public void ViewsShareMemory()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var t = Tensor.Zeros(context, DType.F32, 2, 6);
        var view = t.View(3, 4);
        var column = view.Narrow(1, 3, 1);
        Elementwise.Fill(column, 5);
        var values = t.ToArray<float>();
        Assert.That(values.Select((v, i) => (v, i)).Where(p => p.v == 5).Select(p => p.i), Is.EqualTo(new[] { 3, 7, 11 }));
        Assert.Throws<InvalidOperationException>(() => t.Transpose(0, 1).View(12));
        Assert.That(t.Transpose(0, 1).Reshape(12).ToArray<float>()[6 + 1], Is.EqualTo(values[1 * 6 + 3]));
        Assert.That(t.View(-1, 4).Shape.ToArray(), Is.EqualTo(new long[] { 3, 4 }));
        Assert.That(t.Unsqueeze(1).Shape.ToArray(), Is.EqualTo(new long[] { 2, 1, 6 }));
    }
}
