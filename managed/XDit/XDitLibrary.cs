using XDit.Native;

namespace XDit;

/// <summary>What the loaded native library is and carries.</summary>
public sealed record BuildInfo(
    uint AbiVersion, bool CudaCompiled, int CudaRuntimeVersion, int CudaDeviceCount, bool OpenBlasLoaded,
    int HardwareThreads, string LibraryPath);

/// <summary>Loads libxdit_native once and refuses a library built from another version of xdit.h.</summary>
public static class XDitLibrary
{
    static readonly Lazy<uint> Version = new(() =>
    {
        NativeLibraryResolver.Load();
        var native = NativeMethods.xdit_abi_version();
        if (native != NativeConstants.XDIT_ABI_VERSION)
            throw new XDitException(XditStatus.Unsupported,
                $"{NativeLibraryResolver.LoadedPath} has ABI version {native}, but these bindings expect " +
                $"{NativeConstants.XDIT_ABI_VERSION}: rebuild the native library and the managed code together " +
                "(dotnet pwsh build.ps1 build).");
        return native;
    });

    /// <summary>Loads and checks the library; throws <see cref="XDitException"/> on an ABI mismatch and
    /// <see cref="DllNotFoundException"/> (listing every path tried) when it cannot be found.</summary>
    public static uint EnsureLoaded() => Version.Value;

    public static BuildInfo GetBuildInfo()
    {
        EnsureLoaded();
        NativeStatus.Check(NativeMethods.xdit_get_build_info(out var info));
        return new BuildInfo(info.abi_version, info.cuda_compiled != 0, info.cuda_runtime_version,
            info.cuda_device_count, info.openblas_loaded != 0, info.hardware_threads,
            NativeLibraryResolver.LoadedPath ?? "");
    }
}
