using BenchmarkDotNet.Attributes;
using XDit.Pipelines;

namespace XDit.Bench;

/// <summary>
/// One transformer block at full width, f32, random weights, batch 1, at the image-token counts of 512²
/// (1024) and 1024² (4096) images (<see cref="BlockBenchmarkCase"/>: PixArt-Σ's block, SD3-medium's joint
/// block, FLUX.1-dev's double-stream block). The setup writes the block's weights, inputs and the engine's
/// output to <c>BenchmarkDotNet.Artifacts/peers/blocks/</c>, where the peer (bench/peers/torch_cpu_blocks.py,
/// run by <c>build.ps1 bench-peers</c>) computes the same block in PyTorch, checks it against the engine's
/// output and times it on the same threads.
/// </summary>
[Config(typeof(BenchConfig))]
public class BlockBenchmarks : IFlopCounted
{
    DeviceContext _context = null!;
    BlockBenchmarkCase _case = null!;

    [Params("pixart-sigma", "sd3-medium", "flux-dev")]
    public string Block { get; set; } = "pixart-sigma";

    [Params(1024, 4096)]
    public int Tokens { get; set; } = 1024;

    public double FlopsPerOperation => BlockBenchmarkCase.FlopsOf(Block, Tokens);

    [GlobalSetup]
    public void Setup()
    {
        _context = DeviceContext.Create(Device.Cpu);
        _case = BlockBenchmarkCase.Create(Block, Tokens, _context, DType.F32);
        using var output = _case.Forward();
        var folder = PeerCases();
        Directory.CreateDirectory(folder);
        _case.WritePeerCase(Path.Combine(folder, _case.PeerCaseName), output);
    }

    [Benchmark]
    public void Forward()
    {
        using var output = _case.Forward();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _case.Dispose();
        _context.Dispose();
    }

    /// <summary>BenchmarkDotNet runs this in a generated project: the repository is found above it.</summary>
    static string PeerCases()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "XDitNative.sln")))
                return Path.Combine(dir.FullName, "BenchmarkDotNet.Artifacts", "peers", "blocks");
        throw new DirectoryNotFoundException("the repository (XDitNative.sln) is not above the benchmark's directory");
    }
}
