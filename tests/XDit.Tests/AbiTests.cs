using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using XDit.Native;

namespace XDit.Tests;

/// <summary>The boundary itself: the library's ABI version, struct layouts as the C compiler made
/// them, the library resolver's report, and the generated bindings' freshness.</summary>
[TestFixture]
public class AbiTests
{
    [Test]
    public void AbiVersionMatchesTheBindings()
    {
        Assert.That(XDitLibrary.EnsureLoaded(), Is.EqualTo((uint)NativeConstants.XDIT_ABI_VERSION));
        var info = XDitLibrary.GetBuildInfo();
        Assert.That(info.AbiVersion, Is.EqualTo((uint)NativeConstants.XDIT_ABI_VERSION));
        Assert.That(info.HardwareThreads, Is.GreaterThan(0));
        Assert.That(File.Exists(info.LibraryPath), info.LibraryPath);
    }

    static IEnumerable<Type> NativeStructs() =>
        typeof(NativeMethods).Assembly.GetTypes().Where(t => t.GetCustomAttribute<NativeStructAttribute>() is not null);

    [Test]
    public void EveryStructHasTheNativeSizeAndOffsets()
    {
        XDitLibrary.EnsureLoaded();
        var structs = NativeStructs().ToList();
        Assert.That(structs, Has.Count.GreaterThanOrEqualTo(4));
        foreach (var type in structs)
        {
            var name = type.GetCustomAttribute<NativeStructAttribute>()!.Name;
            Assert.That(NativeMethods.xdit_abi_struct_size(name, out var size), Is.EqualTo(XditStatus.Ok), NativeStatus.LastError());
            Assert.That(Marshal.SizeOf(type), Is.EqualTo((int)size), $"sizeof({name})");
            var fields = type.GetFields(BindingFlags.Public | BindingFlags.Instance);
            foreach (var field in fields)
            {
                Assert.That(NativeMethods.xdit_abi_field_offset(name, field.Name, out var offset), Is.EqualTo(XditStatus.Ok),
                    $"{name}.{field.Name}: {NativeStatus.LastError()}");
                Assert.That((long)Marshal.OffsetOf(type, field.Name), Is.EqualTo((long)offset), $"offsetof({name}, {field.Name})");
            }
        }
    }

    [Test]
    public void UnknownStructsAndFieldsAreErrors()
    {
        Assert.That(NativeMethods.xdit_abi_struct_size("xdit_nothing", out _), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("unknown struct xdit_nothing"));
        Assert.That(NativeMethods.xdit_abi_field_offset("xdit_tensor", "nothing", out _), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(NativeStatus.LastError(), Does.Contain("unknown field xdit_tensor.nothing"));
    }

    [Test]
    public void ResolverReportListsEveryPathTried()
    {
        XDitLibrary.EnsureLoaded();
        var folder = Directory.CreateTempSubdirectory("xdit-resolver");
        try
        {
            var notALibrary = Path.Combine(folder.FullName, "libxdit_native.so");
            File.WriteAllText(notALibrary, "not an ELF file");
            var missing = Path.Combine(folder.FullName, "missing", "libxdit_native.so");
            var report = NativeLibraryResolver.DescribeFailures([missing, notALibrary]);
            Assert.That(report, Does.Contain(missing + ": no such file"));
            Assert.That(report, Does.Contain(notALibrary + ": found but could not be loaded"));
            Assert.That(report, Does.Contain(NativeLibraryResolver.EnvironmentVariable));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    /// <summary>Regenerates the bindings in memory and compares them with the committed files.</summary>
    [Test]
    public void GeneratedBindingsAreFresh()
    {
        var root = RepositoryRoot();
        var python = "/usr/bin/python3";
        if (!File.Exists(python)) Assert.Ignore("Debian's /usr/bin/python3 is not installed");
        var probe = Run(python, "-c \"import clang.cindex\"", root);
        if (probe.ExitCode != 0) Assert.Ignore("python3-clang-14 is not installed (apt-get install python3-clang-14 libclang-14-dev)");
        var check = Run(python, "bindings/generate.py --check", root);
        Assert.That(check.ExitCode, Is.Zero, check.Output);
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "XDitNative.sln"))) return dir.FullName;
        throw new InvalidOperationException("the repository root (XDitNative.sln) is not above " + AppContext.BaseDirectory);
    }

    static (int ExitCode, string Output) Run(string file, string arguments, string workingDirectory)
    {
        var start = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout.Result + stderr);
    }
}
