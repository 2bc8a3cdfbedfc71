using XDit.Nn.Embeddings;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Cli;

/// <summary>
/// The operator cases of <c>xdit check --ops</c>: each computes one operator through the public
/// <c>XDit.Ops</c> API on inputs drawn from a seeded generator, so the same case gives the same inputs on
/// any context. Shapes are awkward on purpose (odd lengths, Sq ≠ Sk, head dims 8–128, broadcasts, strided
/// views), and every output the case writes into starts as NaN, so an element a kernel leaves unwritten
/// shows up in the comparison.
/// </summary>
internal static class OpChecks
{
    /// <param name="Prepare">Makes the inputs and poisoned outputs on a context and returns the operator
    /// call, which writes and returns the outputs to compare (timed on its own, repeatedly).</param>
    /// <param name="Flops">Floating-point operations of one call (0 where the op is memory-bound).</param>
    /// <param name="Elements">Elements read and written by one call (bandwidth-bound cases, whose bench reports
    /// GB/s), or 0.</param>
    public sealed record Case(string Op, string Shape, double Flops, Func<CaseInputs, Func<Tensor[]>> Prepare, double Elements = 0);

    /// <summary>Inputs of one case on one context, drawn in call order from the case's seed.</summary>
    public sealed class CaseInputs(DeviceContext context, DType dtype, int seed)
    {
        readonly Random _random = new(seed);

        public DeviceContext Context => context;
        public DType DType => dtype;

        /// <summary>Uniform values in [−scale, scale), stored as the case's dtype.</summary>
        public Tensor Random(double scale, params long[] shape)
        {
            var values = new float[Shapes.Product(shape)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)((_random.NextDouble() * 2 - 1) * scale);
            using var f32 = Tensor.FromArray(context, values, shape);
            return f32.To(dtype);
        }

        /// <summary>f32 whatever the case's dtype (rotary tables, log-sum-exps).</summary>
        public Tensor RandomF32(double scale, params long[] shape)
        {
            var values = new float[Shapes.Product(shape)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)((_random.NextDouble() * 2 - 1) * scale);
            return Tensor.FromArray(context, values, shape);
        }

        public Tensor Mask(double keep, params long[] shape)
        {
            var values = new bool[Shapes.Product(shape)];
            for (int i = 0; i < values.Length; i++) values[i] = _random.NextDouble() < keep;
            values[0] = true; // every row of the first sample keeps a key
            return Tensor.FromArray(context, values, shape);
        }

        /// <summary>An output filled with NaN: the kernel must write every element.</summary>
        public Tensor Poisoned(params long[] shape) => Tensor.Full(context, dtype, double.NaN, shape);

        public Tensor PoisonedF32(params long[] shape) => Tensor.Full(context, DType.F32, double.NaN, shape);
    }

    public static IReadOnlyList<Case> All { get; } = Build();

    static Case Op(string op, string shape, Func<CaseInputs, Func<Tensor[]>> prepare, double flops = 0) => new(op, shape, flops, prepare);

    static List<Case> Build()
    {
        var cases = new List<Case>();
        foreach (var epilogue in new[] { Epilogue.None, Epilogue.GeluTanh, Epilogue.GeluErf, Epilogue.Silu })
            cases.Add(Op("gemm", $"[2,67,96]·[80,96]ᵀ + bias, {epilogue}", x =>
            {
                var (a, b, bias, output) = (x.Random(1, 2, 67, 96), x.Random(0.2, 80, 96), x.Random(1, 80), x.Poisoned(2, 67, 80));
                return () => { MatMul.Gemm(a, b, bias, output, epilogue); return [output]; };
            }, 2.0 * 2 * 67 * 80 * 96));
        cases.Add(Op("gemm", "[1024,1152]·[1152,1152]ᵀ", x =>
        {
            var (a, b, output) = (x.Random(1, 1024, 1152), x.Random(0.05, 1152, 1152), x.Poisoned(1024, 1152));
            return () => { MatMul.Gemm(a, b, null, output); return [output]; };
        }, 2.0 * 1024 * 1152 * 1152));
        // The epilogues' cost over the bare product at a Flux-sized projection (issue 9's target: at most 5%):
        // the same GEMM bare, with a bias, and with each activation.
        foreach (var (withBias, epilogue) in new[] { (false, Epilogue.None), (true, Epilogue.None), (true, Epilogue.GeluTanh),
                     (true, Epilogue.GeluErf), (true, Epilogue.Silu) })
            cases.Add(Op("gemm", $"[4096,3072]·[3072,3072]ᵀ{(withBias ? " + bias" : "")}, {epilogue}", x =>
            {
                var (a, b, bias, output) = (x.Random(1, 4096, 3072), x.Random(0.02, 3072, 3072), withBias ? x.Random(1, 3072) : null,
                    x.Poisoned(4096, 3072));
                return () => { MatMul.Gemm(a, b, bias, output, epilogue); return [output]; };
            }, 2.0 * 4096 * 3072 * 3072));

        // Awkward shapes first, then the sizes of real models (PixArt-Σ 16 heads of 72, SD3 64, Flux 128) at
        // 4096–16384 tokens, where the kit's bench stage compares with PyTorch's attention on the same card.
        foreach (var (sq, sk, heads, d) in new[]
                 {
                     (37, 53, 2, 8), (77, 300, 3, 64), (129, 65, 2, 72), (16, 600, 2, 128), (1024, 1024, 4, 72),
                     (4096, 4096, 16, 72), (4096, 4096, 24, 64), (4096, 4096, 24, 128), (16384, 16384, 2, 72),
                 })
            cases.Add(Op("attention", $"q [1,{sq},{heads},{d}], k/v [1,{sk},{heads},{d}], with LSE", x =>
            {
                var (q, k, v) = (x.Random(1.5, 1, sq, heads, d), x.Random(1.5, 1, sk, heads, d), x.Random(1, 1, sk, heads, d));
                var (output, lse) = (x.Poisoned(1, sq, heads, d), x.PoisonedF32(1, heads, sq));
                return () => { Attention.ScaledDotProduct(q, k, v, null, null, null, output, lse); return [output, lse]; };
            }, 4.0 * heads * sq * sk * d));
        cases.Add(Op("attention", "key mask, scale 0.3: q [2,33,2,16], k/v [2,270,2,16]", x =>
        {
            var (q, k, v, mask) = (x.Random(1, 2, 33, 2, 16), x.Random(1, 2, 270, 2, 16), x.Random(1, 2, 270, 2, 16), x.Mask(0.7, 2, 270));
            var output = x.Poisoned(2, 33, 2, 16);
            return () => { Attention.ScaledDotProduct(q, k, v, mask, null, 0.3, output, null); return [output]; };
        }, 4.0 * 2 * 2 * 33 * 270 * 16));
        // The tensor-core path's edges (bf16; f32 takes the generic kernel): a key mask with the second sample
        // masked out entirely (zeros), key and query counts off its 64-wide tiles, and q/k/v as views of one
        // packed [B, S, 3·H, D] projection.
        cases.Add(Op("attention", "key mask (sample 2 all masked): q [2,100,2,96], k/v [2,130,2,96]", x =>
        {
            var (q, k, v, mask) = (x.Random(1.5, 2, 100, 2, 96), x.Random(1.5, 2, 130, 2, 96), x.Random(1, 2, 130, 2, 96), x.Mask(0.6, 2, 130));
            using (var second = mask.Narrow(0, 1, 1)) Elementwise.Fill(second, 0);
            var output = x.Poisoned(2, 100, 2, 96);
            return () => { Attention.ScaledDotProduct(q, k, v, mask, null, null, output, null); return [output]; };
        }, 4.0 * 2 * 2 * 100 * 130 * 96));
        // Masked keys are never read: NaN in their K and V (uninitialised padding) must not reach the output.
        cases.Add(Op("attention", "masked keys hold NaN: q [1,70,2,64], k/v [1,90,2,64]", x =>
        {
            var (q, k, v, mask) = (x.Random(1.5, 1, 70, 2, 64), x.Random(1.5, 1, 90, 2, 64), x.Random(1, 1, 90, 2, 64), x.Mask(0.8, 1, 90));
            using (var padding = mask.Narrow(1, 70, 20)) Elementwise.Fill(padding, 0);
            using (var paddedKeys = k.Narrow(1, 70, 20)) Elementwise.Fill(paddedKeys, double.NaN);
            using (var paddedValues = v.Narrow(1, 70, 20)) Elementwise.Fill(paddedValues, double.NaN);
            var output = x.Poisoned(1, 70, 2, 64);
            return () => { Attention.ScaledDotProduct(q, k, v, mask, null, null, output, null); return [output]; };
        }, 4.0 * 2 * 70 * 90 * 64));
        cases.Add(Op("attention", "q/k/v views of a packed [1,200,12,64], with LSE", x =>
        {
            var qkv = x.Random(1.5, 1, 200, 12, 64);
            var (q, k, v) = (qkv.Narrow(2, 0, 4), qkv.Narrow(2, 4, 4), qkv.Narrow(2, 8, 4));
            var (output, lse) = (x.Poisoned(1, 200, 4, 64), x.PoisonedF32(1, 4, 200));
            return () => { Attention.ScaledDotProduct(q, k, v, null, null, null, output, lse); return [output, lse]; };
        }, 4.0 * 4 * 200 * 200 * 64));
        cases.Add(Op("attention_merge", "[1,45,3,24] + [1,45,3,24]", x =>
        {
            var (outA, lseA, outB, lseB) = (x.Random(1, 1, 45, 3, 24), x.RandomF32(3, 1, 3, 45), x.Random(1, 1, 45, 3, 24), x.RandomF32(3, 1, 3, 45));
            var (output, lse) = (x.Poisoned(1, 45, 3, 24), x.PoisonedF32(1, 3, 45));
            return () => { Attention.Merge(outA, lseA, outB, lseB, output, lse); return [output, lse]; };
        }));

        cases.Add(Op("layer_norm", "adaLN: [2,77,96], scale/shift [2,1,96]", x =>
        {
            var (input, scale, shift, output) = (x.Random(2, 2, 77, 96), x.Random(0.5, 2, 1, 96), x.Random(0.5, 2, 1, 96), x.Poisoned(2, 77, 96));
            return () => { Normalization.LayerNorm(input, null, null, 1e-6, scale, shift, output); return [output]; };
        }));
        cases.Add(Op("layer_norm", "affine: [3,50,72]", x =>
        {
            var (input, weight, bias, output) = (x.Random(2, 3, 50, 72), x.Random(1, 72), x.Random(1, 72), x.Poisoned(3, 50, 72));
            return () => { Normalization.LayerNorm(input, weight, bias, 1e-5, null, null, output); return [output]; };
        }));
        cases.Add(Op("rms_norm", "[2,41,2,64]", x =>
        {
            var (input, weight, output) = (x.Random(2, 2, 41, 2, 64), x.Random(1, 64), x.Poisoned(2, 41, 2, 64));
            return () => { Normalization.RmsNorm(input, weight, 1e-6, output); return [output]; };
        }));
        cases.Add(Op("group_norm", "[2,64,13,11], 32 groups", x =>
        {
            var (input, weight, bias, output) = (x.Random(2, 2, 64, 13, 11), x.Random(1, 64), x.Random(1, 64), x.Poisoned(2, 64, 13, 11));
            return () => { Normalization.GroupNorm(input, 32, weight, bias, 1e-6, output); return [output]; };
        }));
        cases.Add(Op("group_norm_statistics", "[2,64,13,11], 32 groups (the parallel VAE's first half)", x =>
        {
            var input = x.Random(2, 2, 64, 13, 11);
            return () => [Normalization.GroupNormStatistics(input, 32)];
        }));
        cases.Add(Op("group_norm_with_statistics", "[2,64,13,11], 32 groups (its second half)", x =>
        {
            var (input, statistics, weight, bias) = (x.Random(2, 2, 64, 13, 11), x.RandomF32(1, 2, 32, 2), x.Random(1, 64), x.Random(1, 64));
            return () => [Normalization.GroupNormWithStatistics(input, 32, statistics, weight, bias)];
        }));
        cases.Add(Op("softmax", "[3,7,301]", x =>
        {
            var (input, output) = (x.Random(4, 3, 7, 301), x.Poisoned(3, 7, 301));
            return () => { Elementwise.Softmax(input, output); return [output]; };
        }));

        foreach (var op in new[] { UnaryOp.GeluTanh, UnaryOp.GeluErf, UnaryOp.Silu, UnaryOp.Exp, UnaryOp.Sin, UnaryOp.Cos })
            cases.Add(Op("unary", $"{op} [5,999]", x =>
            {
                var (input, output) = (x.Random(3, 5, 999), x.Poisoned(5, 999));
                return () => { Elementwise.Unary(op, input, output); return [output]; };
            }));
        // Angles up to 6000 radians (guidance·1000), where the sines must be evaluated in double as on the host.
        cases.Add(Op("timestep_embedding", "t ∈ [0, 6000) [64] → [64,256]", x =>
        {
            var timesteps = Elementwise.Affine(x.RandomF32(1, 64), 3000, 3000);
            return () => [TimestepEmbedding.Sinusoidal(timesteps, 256, flipSinToCos: true, downscaleFreqShift: 0)];
        }));
        cases.Add(Op("gated_activation", "GELU-tanh(gate)·up [4,131,40]", x =>
        {
            var (gate, up, output) = (x.Random(2, 4, 131, 40), x.Random(2, 4, 131, 40), x.Poisoned(4, 131, 40));
            return () => { Elementwise.GatedActivation(UnaryOp.GeluTanh, gate, up, output); return [output]; };
        }));
        cases.Add(Op("binary", "add, broadcast [4,1,33] + [7,1]", x =>
        {
            var (a, b, output) = (x.Random(1, 4, 1, 33), x.Random(1, 7, 1), x.Poisoned(4, 7, 33));
            return () => { Elementwise.Add(a, b, output); return [output]; };
        }));
        cases.Add(Op("binary", "mul, strided view [33,40]ᵀ", x =>
        {
            var (a, b, output) = (x.Random(1, 33, 40).Transpose(0, 1), x.Random(1, 40, 33), x.Poisoned(40, 33));
            return () => { Elementwise.Mul(a, b, output); return [output]; };
        }));
        cases.Add(Op("lerp", "guidance u + 4.5·(c − u) [2,4,17,19]", x =>
        {
            var (u, c, output) = (x.Random(1, 2, 4, 17, 19), x.Random(1, 2, 4, 17, 19), x.Poisoned(2, 4, 17, 19));
            return () => { Elementwise.Lerp(u, c, 4.5, output); return [output]; };
        }));
        cases.Add(Op("add_mul", "gated residual x + gate·y [2,77,96]", x =>
        {
            var (input, gate, y, output) = (x.Random(1, 2, 77, 96), x.Random(1, 2, 1, 96), x.Random(1, 2, 77, 96), x.Poisoned(2, 77, 96));
            return () => { Elementwise.AddMul(input, gate, y, output); return [output]; };
        }));
        foreach (var pairing in new[] { RotaryPairing.Interleaved, RotaryPairing.Halves })
            cases.Add(Op("rope", $"{pairing} [2,45,3,32]", x =>
            {
                var (input, cos, sin, output) = (x.Random(1, 2, 45, 3, 32), x.RandomF32(1, 45, 1, 32), x.RandomF32(1, 45, 1, 32), x.Poisoned(2, 45, 3, 32));
                return () => { Rotary.Apply(input, cos, sin, pairing, output); return [output]; };
            }));

        foreach (var (k, stride, padding) in new[] { (3, 1, 1), (3, 2, 0), (1, 1, 0) })
        {
            var (ho, wo) = ((19 + 2 * padding - k) / stride + 1, (23 + 2 * padding - k) / stride + 1);
            cases.Add(Op("conv2d", $"[2,24,19,23] ⊛ [32,24,{k},{k}], stride {stride}, pad {padding}", x =>
            {
                var (input, weight, bias, output) = (x.Random(1, 2, 24, 19, 23), x.Random(0.2, 32, 24, k, k), x.Random(1, 32), x.Poisoned(2, 32, ho, wo));
                return () => { Convolution.Conv2d(input, weight, bias, stride, stride, padding, padding, output); return [output]; };
            }, 2.0 * 2 * 32 * 24 * k * k * ho * wo));
        }
        // Three output channels (the VAE's conv_out) take CUDA's direct kernel; the VAE decoder's width at
        // 256² takes the GEMM form in several bands of rows.
        cases.Add(Op("conv2d", "[2,16,20,20] ⊛ [3,16,3,3], pad 1", x =>
        {
            var (input, weight, bias, output) = (x.Random(1, 2, 16, 20, 20), x.Random(0.2, 3, 16, 3, 3), x.Random(1, 3), x.Poisoned(2, 3, 20, 20));
            return () => { Convolution.Conv2d(input, weight, bias, 1, 1, 1, 1, output); return [output]; };
        }, 2.0 * 2 * 3 * 16 * 9 * 400));
        cases.Add(Op("conv2d", "[1,128,256,256] ⊛ [128,128,3,3], pad 1", x =>
        {
            var (input, weight, bias, output) = (x.Random(1, 1, 128, 256, 256), x.Random(0.05, 128, 128, 3, 3), x.Random(1, 128), x.Poisoned(1, 128, 256, 256));
            return () => { Convolution.Conv2d(input, weight, bias, 1, 1, 1, 1, output); return [output]; };
        }, 2.0 * 128 * 128 * 9 * 256 * 256));
        cases.Add(Op("upsample_nearest", "2× [2,8,9,7]", x =>
        {
            var input = x.Random(1, 2, 8, 9, 7);
            return () => [Convolution.UpsampleNearest(input)];
        }));
        cases.Add(Op("patchify", "[2,4,18,14], p = 2", x =>
        {
            var input = x.Random(1, 2, 4, 18, 14);
            return () => [Layout.Patchify(input, 2)];
        }));
        cases.Add(Op("unpatchify", "[2,63,16] → [2,4,18,14], p = 2", x =>
        {
            var input = x.Random(1, 2, 63, 16);
            return () => [Layout.Unpatchify(input, 18, 14, 2, 4)];
        }));
        cases.Add(Op("flux_pack", "[1,16,10,12]", x =>
        {
            var input = x.Random(1, 1, 16, 10, 12);
            return () => [Layout.FluxPack(input)];
        }));
        cases.Add(Op("ulysses_scatter_heads", "[2,30,8,16], degree 4", x =>
        {
            var input = x.Random(1, 2, 30, 8, 16);
            return () => [Layout.UlyssesScatterHeads(input, 4)];
        }));
        cases.Add(Op("ulysses_gather_sequence", "[4,2,30,2,16]", x =>
        {
            var input = x.Random(1, 4, 2, 30, 2, 16);
            return () => [Layout.UlyssesGatherSequence(input)];
        }));
        cases.Add(Op("cat", "dim 1: [2,5,24] + [2,11,24]", x =>
        {
            var (a, b) = (x.Random(1, 2, 5, 24), x.Random(1, 2, 11, 24));
            return () => [Layout.Cat(1, a, b)];
        }));
        cases.Add(Op("copy", "transposed view [45,3,24] → contiguous", x =>
        {
            var input = x.Random(1, 3, 45, 24).Transpose(0, 1);
            return () => [input.Contiguous()];
        }));

        // Bandwidth-bound kernels at model sizes, with a plain copy first as the device's reference bandwidth
        // (issue 9's target: at least 80% of it). The bench reports GB/s from the elements each call moves.
        const long copied = 4096L * 8192;
        cases.Add(new Case("copy", "contiguous [4096,8192] (reference bandwidth)", 0, x =>
        {
            var (input, output) = (x.Random(1, 4096, 8192), x.Poisoned(4096, 8192));
            return () => { Elementwise.Copy(input, output); return [output]; };
        }, 2.0 * copied));
        cases.Add(new Case("layer_norm", "adaLN: [2,4096,3072], scale/shift [2,1,3072]", 0, x =>
        {
            var (input, scale, shift, output) = (x.Random(2, 2, 4096, 3072), x.Random(0.5, 2, 1, 3072), x.Random(0.5, 2, 1, 3072), x.Poisoned(2, 4096, 3072));
            return () => { Normalization.LayerNorm(input, null, null, 1e-6, scale, shift, output); return [output]; };
        }, 2.0 * 2 * 4096 * 3072));
        cases.Add(new Case("rope", "interleaved [1,4608,24,128]", 0, x =>
        {
            var (input, cos, sin, output) = (x.Random(1, 1, 4608, 24, 128), x.RandomF32(1, 4608, 1, 128), x.RandomF32(1, 4608, 1, 128), x.Poisoned(1, 4608, 24, 128));
            return () => { Rotary.Apply(input, cos, sin, RotaryPairing.Interleaved, output); return [output]; };
        }, 2.0 * 4608 * 24 * 128));
        cases.Add(new Case("ulysses_scatter_heads", "[1,4096,24,128], degree 4", 0, x =>
        {
            var input = x.Random(1, 1, 4096, 24, 128);
            return () => [Layout.UlyssesScatterHeads(input, 4)];
        }, 2.0 * 4096 * 24 * 128));
        return cases;
    }

    /// <summary>Median device time of one operator call over <paramref name="runs"/> calls, between marks of the
    /// context (CUDA events on a GPU, the host clock on the CPU), after one untimed call.</summary>
    public static TimeSpan Time(Func<Tensor[]> call, DeviceContext context, int runs)
    {
        var times = new List<TimeSpan>();
        for (int r = 0; r <= runs; r++)
        {
            using var scope = new TensorScope();
            using var start = context.Mark();
            call();
            using var end = context.Mark();
            var elapsed = end.Since(start);
            if (r > 0) times.Add(elapsed);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
