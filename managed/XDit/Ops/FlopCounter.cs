namespace XDit.Ops;

/// <summary>
/// Counts the floating-point operations of the matrix products (GEMM, attention, convolution) issued on
/// this thread, the work that dominates a diffusion step: benchmarks read it around a step to report
/// achieved throughput without a per-model formula. 2 FLOPs per multiply-add.
/// </summary>
public static class FlopCounter
{
    [ThreadStatic] static long _flops;

    /// <summary>Operations counted on this thread since it started or since the last <see cref="Reset"/>.</summary>
    public static long Current => _flops;

    public static void Reset() => _flops = 0;

    internal static void Add(double flops) => _flops += (long)flops;
}
