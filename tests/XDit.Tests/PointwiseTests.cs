using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Pointwise maps, the L1 reduction and softmax against fp64 formulas. Tolerance: relative
/// L2 < 1e-6 in f32 (a few ulp of the float math functions); f16/bf16 within their rounding.</summary>
[TestFixture]
public class PointwiseTests
{
    static readonly (UnaryOp Op, Func<double, double> F)[] UnaryCases =
    {
        (UnaryOp.GeluTanh, Reference.GeluTanh), (UnaryOp.GeluErf, Reference.GeluErf), (UnaryOp.Silu, Reference.Silu),
        (UnaryOp.Exp, Math.Exp), (UnaryOp.Abs, Math.Abs), (UnaryOp.Neg, x => -x), (UnaryOp.Sin, Math.Sin), (UnaryOp.Cos, Math.Cos),
    };

    [Test]
    public void UnaryOpsMatchFp64OnAStridedView()
    {
        using var context = Contexts.Cpu();
        foreach (var (op, f) in UnaryCases)
        {
            using var scope = new TensorScope();
            var (x, values) = Data.Random(context, 3, 4, 7, 33);
            var view = x.Transpose(0, 1); // [33, 7], non-contiguous
            var output = Tensor.Full(context, DType.F32, double.NaN, 33, 7);
            Elementwise.Unary(op, view, output);
            var expected = new double[33 * 7];
            for (int i = 0; i < 7; i++) for (int j = 0; j < 33; j++) expected[j * 7 + i] = f(values[i * 33 + j]);
            Assert.That(Reference.RelativeL2(output.ToArray<float>(), expected), Is.LessThan(1e-6), op.ToString());
        }
    }

    [Test]
    public void ArithmeticWithBroadcast()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (a, av) = Data.Random(context, 1, 2, 2, 5, 6);
        var (b, bv) = Data.Random(context, 2, 2, 6);
        var (c, cv) = Data.Random(context, 3, 2, 2, 1, 6);
        double[] Expect(Func<int, int, int, double> f)
        {
            var r = new double[60];
            for (int i = 0; i < 2; i++) for (int j = 0; j < 5; j++) for (int k = 0; k < 6; k++) r[(i * 5 + j) * 6 + k] = f(i, j, k);
            return r;
        }
        double A(int i, int j, int k) => av[(i * 5 + j) * 6 + k];
        Assert.That(Reference.RelativeL2(Elementwise.Sub(a, b).ToArray<float>(), Expect((i, j, k) => A(i, j, k) - bv[k])), Is.LessThan(1e-7));
        Assert.That(Reference.RelativeL2(Elementwise.Div(a, Elementwise.Affine(b, 1, 3)).ToArray<float>(),
            Expect((i, j, k) => A(i, j, k) / (bv[k] + 3))), Is.LessThan(1e-6));
        Assert.That(Reference.RelativeL2(Elementwise.AddMul(a, c, b).ToArray<float>(),
            Expect((i, j, k) => A(i, j, k) + cv[i * 6 + k] * bv[k])), Is.LessThan(1e-6));
        Assert.That(Reference.RelativeL2(Elementwise.Lerp(a, b, 4.5).ToArray<float>(),
            Expect((i, j, k) => A(i, j, k) + 4.5 * (bv[k] - A(i, j, k)))), Is.LessThan(1e-6));
        Assert.That(Reference.RelativeL2(Elementwise.Clamp(a, -0.5, 0.25).ToArray<float>(),
            Expect((i, j, k) => Math.Clamp(A(i, j, k), -0.5, 0.25))), Is.EqualTo(0));
        Assert.That(Reference.RelativeL2(Elementwise.Affine(a, -2, 0.5).ToArray<float>(),
            Expect((i, j, k) => -2 * A(i, j, k) + 0.5)), Is.LessThan(1e-7));
    }

    [Test]
    public void GatedActivationOnTheHalvesOfOneProjection()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (projection, values) = Data.Random(context, 5, 3, 4, 10); // GEGLU: [hidden | gate]
        var hidden = projection.Narrow(1, 0, 5);
        var gate = projection.Narrow(1, 5, 5);
        var output = Elementwise.GatedActivation(UnaryOp.GeluTanh, gate, hidden).ToArray<float>();
        var expected = new double[20];
        for (int r = 0; r < 4; r++) for (int c = 0; c < 5; c++) expected[r * 5 + c] = Reference.GeluTanh(values[r * 10 + 5 + c]) * values[r * 10 + c];
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(1e-6));
    }

    [TestCase(DType.F32)]
    [TestCase(DType.BF16)]
    public void AbsSumAndRelativeL1(DType dtype)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (a, av) = Data.Random(context, dtype, 1, 1, 3, 70001); // crosses the 64k reduction chunk
        var (b, bv) = Data.Random(context, dtype, 2, 1, 3, 70001);
        double diff = 0, norm = 0;
        for (int i = 0; i < av.Length; i++) { diff += Math.Abs((double)av[i] - bv[i]); norm += Math.Abs((double)bv[i]); }
        // The sums are fp64 inside; the f32 result rounds them (relative 6e-8).
        Assert.That(Elementwise.AbsSum(a, b), Is.EqualTo(diff).Within(1e-5).Percent);
        Assert.That(Elementwise.AbsSum(b), Is.EqualTo(norm).Within(1e-5).Percent);
        Assert.That(Elementwise.RelativeL1(a, b), Is.EqualTo(diff / norm).Within(1e-5).Percent);
        using var one = Contexts.Cpu(threads: 1);
        var (a1, _) = Data.Random(one, dtype, 1, 1, 3, 70001);
        var (b1, _) = Data.Random(one, dtype, 2, 1, 3, 70001);
        Assert.That(Elementwise.AbsSum(a1, b1), Is.EqualTo(Elementwise.AbsSum(a, b)), "independent of the thread count");
    }

    [Test]
    public void SoftmaxOverTheLastDimension()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (x, values) = Data.Random(context, 9, 20, 5, 301);
        var output = Elementwise.Softmax(x).ToArray<float>();
        var expected = new double[values.Length];
        for (int r = 0; r < 5; r++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int c = 0; c < 301; c++) max = Math.Max(max, values[r * 301 + c]);
            for (int c = 0; c < 301; c++) sum += Math.Exp(values[r * 301 + c] - max);
            for (int c = 0; c < 301; c++) expected[r * 301 + c] = Math.Exp(values[r * 301 + c] - max) / sum;
        }
        Assert.That(Reference.RelativeL2(output, expected), Is.LessThan(1e-6));
    }

    [Test]
    public void InvalidArgumentsAreNamed()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var a = Tensor.Zeros(context, DType.F32, 2, 3);
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.Clamp(a, 1, 0))!.Message, Does.Contain("empty"));
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.GatedActivation(UnaryOp.Exp, a, a))!.Message, Does.Contain("GELU"));
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.Add(a, Tensor.Zeros(context, DType.F32, 4)))!.Message,
            Does.Contain("[4]").And.Contain("[2, 3]").And.Contain("do not broadcast"));
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.Add(a, Tensor.Zeros(context, DType.BF16, 2, 3)))!.Message,
            Does.Contain("same dtype"));
        var ints = Tensor.Zeros(context, DType.I32, 2);
        Assert.That(Assert.Throws<XDitException>(() => Elementwise.Unary(UnaryOp.Abs, ints))!.Message, Does.Contain("f32, f16 or bf16"));
    }
}
