using BenchmarkDotNet.Attributes;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Bench;

/// <summary>
/// CPU GEMM out = a·bᵀ + bias in f32 at three sizes: a small square one, and the two linear layers of
/// a PixArt-Σ block at 1024 tokens (hidden 1152, MLP 4608). The OpenBLAS variant is the peer the
/// built-in kernel is measured against; FLOPs per operation = 2·M·N·K.
/// </summary>
[Config(typeof(BenchConfig))]
public class GemmBenchmarks : IFlopCounted
{
    DeviceContext _context = null!;
    Tensor _a = null!, _b = null!, _bias = null!, _out = null!;

    [Params("256x256x256", "1024x1152x1152", "1024x4608x1152")]
    public string Shape { get; set; } = "256x256x256";

    [Params(CpuGemm.OpenBlas, CpuGemm.Builtin)]
    public CpuGemm Kernel { get; set; }

    (int M, int N, int K) Dims
    {
        get
        {
            var parts = Shape.Split('x').Select(int.Parse).ToArray();
            return (parts[0], parts[1], parts[2]);
        }
    }

    public double FlopsPerOperation => 2.0 * Dims.M * Dims.N * Dims.K;

    [GlobalSetup]
    public void Setup()
    {
        var (m, n, k) = Dims;
        _context = DeviceContext.Create(Device.Cpu, new ContextOptions { CpuGemm = Kernel });
        var random = new Random(1);
        float[] Values(int count) => Enumerable.Range(0, count).Select(_ => (float)random.NextDouble() - 0.5f).ToArray();
        _a = Tensor.FromArray(_context, Values(m * k), m, k);
        _b = Tensor.FromArray(_context, Values(n * k), n, k);
        _bias = Tensor.FromArray(_context, Values(n), n);
        _out = Tensor.Empty(_context, DType.F32, m, n);
    }

    [Benchmark]
    public void Gemm() => MatMul.Gemm(_a, _b, _bias, _out);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _a, _b, _bias, _out }) t.Dispose();
        _context.Dispose();
    }
}
