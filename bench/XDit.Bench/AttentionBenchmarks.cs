using BenchmarkDotNet.Attributes;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Bench;

/// <summary>
/// CPU attention softmax(q·kᵀ/√D)·v in f32, [B=1, S, H, D] layouts as the models use them, at the
/// sequence lengths of PixArt-Σ (4096 tokens at 1024², 1024 at 512²). FLOPs per operation =
/// 4·H·S²·D (two products). The peer is bench/peers/torch_cpu_attention.py (PyTorch on the same
/// threads, same shapes), run by <c>build.ps1 bench-peers</c>; the GEMM benchmarks of the same run give
/// the matrix-product throughput the kernel is measured against. <see cref="Isa"/> compares the AVX2
/// register tiles with the plain C++ ones every x86-64 processor runs.
/// </summary>
[Config(typeof(BenchConfig))]
public class AttentionBenchmarks : IFlopCounted
{
    DeviceContext _context = null!;
    Tensor _q = null!, _k = null!, _v = null!, _out = null!;

    [Params("1024x16x72", "4096x4x72", "2048x8x128")]
    public string Shape { get; set; } = "1024x16x72";

    [Params(CpuIsa.Avx2, CpuIsa.Baseline)]
    public CpuIsa Isa { get; set; } = CpuIsa.Avx2;

    (int S, int H, int D) Dims
    {
        get
        {
            var parts = Shape.Split('x').Select(int.Parse).ToArray();
            return (parts[0], parts[1], parts[2]);
        }
    }

    public double FlopsPerOperation => 4.0 * Dims.H * (double)Dims.S * Dims.S * Dims.D;

    [GlobalSetup]
    public void Setup()
    {
        var (s, h, d) = Dims;
        _context = DeviceContext.Create(Device.Cpu, new ContextOptions { CpuIsa = Isa });
        var random = new Random(1);
        Tensor Make() => Tensor.FromArray(_context, Enumerable.Range(0, s * h * d).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), 1, s, h, d);
        (_q, _k, _v) = (Make(), Make(), Make());
        _out = Tensor.Empty(_context, DType.F32, 1, s, h, d);
    }

    [Benchmark]
    public void Attention() => XDit.Ops.Attention.ScaledDotProduct(_q, _k, _v, null, null, null, _out, null);

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _q, _k, _v, _out }) t.Dispose();
        _context.Dispose();
    }
}
