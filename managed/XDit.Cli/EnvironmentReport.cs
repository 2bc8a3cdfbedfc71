namespace XDit.Cli;

/// <summary><c>xdit check</c> without options: what the engine found on this machine and what to
/// install for what is missing.</summary>
public static class EnvironmentReport
{
    public static int Run(TextWriter output)
    {
        var info = XDitLibrary.GetBuildInfo();
        output.WriteLine($"libxdit_native     {info.LibraryPath} (ABI {info.AbiVersion})");
        using (var cpu = DeviceContext.Create(Device.Cpu, new ContextOptions { NumThreads = 1 }))
            output.WriteLine($"CPU                {info.HardwareThreads} hardware threads; GEMM: " +
                (info.OpenBlasLoaded ? "OpenBLAS" : "built-in kernel (install libopenblas0 for OpenBLAS)") +
                $"; attention tiles: {(cpu.CpuIsa == CpuIsa.Avx2 ? "AVX2 + FMA" : "baseline C++ (no AVX2 on this processor)")}");
        if (!info.CudaCompiled)
            output.WriteLine("CUDA               not compiled in (rebuild with nvcc available: dotnet pwsh build.ps1 build -Cuda ON)");
        else
            output.WriteLine($"CUDA               runtime {info.CudaRuntimeVersion / 1000}.{info.CudaRuntimeVersion % 1000 / 10}, " +
                (info.CudaDeviceCount > 0 ? $"{info.CudaDeviceCount} device(s)" : "no device visible (no GPU or no NVIDIA driver)"));
        return 0;
    }
}
