using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace XDit.Native;

/// <summary>
/// Finds libxdit_native deterministically: <c>$XDIT_NATIVE_LIB</c> (a file path), then next to this
/// assembly, then <c>runtimes/linux-x64/native/</c> below it, then the application's base folder and
/// its <c>runtimes/linux-x64/native/</c>. When every candidate fails, the exception lists each path
/// tried with the loader's reason, and what to do.
/// </summary>
public static class NativeLibraryResolver
{
    public const string EnvironmentVariable = "XDIT_NATIVE_LIB";
    const string FileName = "libxdit_native.so";

    static readonly object Gate = new();
    static nint _handle;
    static string? _loadedPath;

    /// <summary>The file the library was loaded from, once loaded.</summary>
    public static string? LoadedPath => _loadedPath;

#pragma warning disable CA2255 // the resolver must be in place before this assembly's first P/Invoke
    [ModuleInitializer]
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(NativeLibraryResolver).Assembly, Resolve);
#pragma warning restore CA2255

    static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath) =>
        name == NativeMethods.LibraryName ? Load() : 0;

    /// <summary>Loads the library (once) or throws <see cref="DllNotFoundException"/> with every path tried.</summary>
    public static nint Load()
    {
        lock (Gate)
        {
            if (_handle != 0) return _handle;
            foreach (var path in Candidates())
            {
                if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle))
                {
                    _handle = handle;
                    _loadedPath = path;
                    return handle;
                }
            }
            throw new DllNotFoundException(DescribeFailures(Candidates()));
        }
    }

    /// <summary>Why each candidate path failed to load, and what to do: the message users see.</summary>
    public static string DescribeFailures(IEnumerable<string> candidates)
    {
        var report = new StringBuilder($"{FileName} could not be loaded. Paths tried:");
        foreach (var path in candidates)
        {
            report.Append("\n  ").Append(path).Append(": ");
            report.Append(File.Exists(path) ? $"found but could not be loaded ({LoaderError(path)})" : "no such file");
        }
        report.Append($"\nBuild it with 'dotnet pwsh build.ps1 build', or set {EnvironmentVariable} to the library's full path.");
        return report.ToString();
    }

    static IEnumerable<string> Candidates()
    {
        var explicitPath = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(explicitPath)) yield return Path.GetFullPath(explicitPath);
        var folders = new List<string>();
#pragma warning disable IL3000 // empty in a single-file app; the base directory below covers that case
        var assemblyFolder = Path.GetDirectoryName(typeof(NativeLibraryResolver).Assembly.Location);
#pragma warning restore IL3000
        if (!string.IsNullOrEmpty(assemblyFolder)) folders.Add(assemblyFolder);
        if (!folders.Contains(AppContext.BaseDirectory.TrimEnd('/'))) folders.Add(AppContext.BaseDirectory.TrimEnd('/'));
        foreach (var folder in folders)
        {
            yield return Path.Combine(folder, FileName);
            yield return Path.Combine(folder, "runtimes", "linux-x64", "native", FileName);
        }
    }

    // NativeLibrary.TryLoad hides dlerror(); Load throws with it.
    static string LoaderError(string path)
    {
        try
        {
            NativeLibrary.Free(NativeLibrary.Load(path));
            return "unknown reason";
        }
        catch (Exception e)
        {
            return e.Message.Trim();
        }
    }
}
