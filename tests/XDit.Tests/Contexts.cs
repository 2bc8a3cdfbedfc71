using XDit.Native;

namespace XDit.Tests;

/// <summary>Contexts for tests. CUDA tests call <see cref="CudaOrIgnore"/> so that they report as
/// skipped, not passed, on machines without a usable GPU.</summary>
internal static class Contexts
{
    public static DeviceContext Cpu(CpuGemm gemm = CpuGemm.Auto, int threads = 0, ulong memoryLimit = 0) =>
        DeviceContext.Create(Device.Cpu, new ContextOptions { CpuGemm = gemm, NumThreads = threads, MemoryLimitBytes = memoryLimit });

    public static DeviceContext CudaOrIgnore()
    {
        var info = XDitLibrary.GetBuildInfo();
        if (!info.CudaCompiled) Assert.Ignore("the native library was built without CUDA");
        if (info.CudaDeviceCount == 0) Assert.Ignore("no CUDA device on this machine");
        return DeviceContext.Create(Device.Cuda(0));
    }

    /// <summary>The CPU GEMM variants this machine can run: the built-in kernel always, OpenBLAS when found.</summary>
    public static IEnumerable<CpuGemm> CpuGemms()
    {
        yield return CpuGemm.Builtin;
        yield return CpuGemm.OpenBlas;
    }

    public static DeviceContext CpuWith(CpuGemm gemm)
    {
        if (gemm == CpuGemm.OpenBlas && !XDitLibrary.GetBuildInfo().OpenBlasLoaded)
            Assert.Ignore("OpenBLAS (libopenblas.so.0) is not installed");
        return Cpu(gemm);
    }

    public static XditStatus StatusOf(Action action) =>
        Assert.Throws<XDitException>(() => action())!.Status;
}
