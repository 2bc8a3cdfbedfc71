using BenchmarkDotNet.Attributes;
using XDit.Models.PixArt;
using XDit.Nn;
using XDit.Pipelines;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Bench;

/// <summary>
/// One PixArt-Σ transformer block at full width (1152 channels, 16 heads of 72, a 300-token caption),
/// f32, random weights, at the token counts of 512² (1024) and 1024² (4096) images. FLOPs per operation
/// = 28·S·C² + 4·T·C² (the projections and the feed-forward) + 4·S²·C + 4·S·T·C (self- and
/// cross-attention). The setup writes the block's weights, inputs and the engine's output to
/// <c>BenchmarkDotNet.Artifacts/peers/blocks/</c>, where the peer (bench/peers/torch_cpu_blocks.py, run by
/// <c>build.ps1 bench-peers</c>) computes the same block in PyTorch, checks it against the engine's
/// output and times it on the same threads.
/// </summary>
[Config(typeof(BenchConfig))]
public class BlockBenchmarks : IFlopCounted
{
    const int CaptionTokens = 300;

    DeviceContext _context = null!;
    PixArtBlock _block = null!;
    Tensor _x = null!, _timestep = null!, _caption = null!;

    [Params(1024, 4096)]
    public int Tokens { get; set; } = 1024;

    static PixArtConfig Config =>
        PixArtConfig.FromJson(System.Text.Json.JsonSerializer.SerializeToElement(PixArtArchitecture.Get("pixart-sigma").Transformer));

    public double FlopsPerOperation
    {
        get
        {
            double s = Tokens, c = Config.InnerDim, t = CaptionTokens;
            return 28 * s * c * c + 4 * t * c * c + 4 * s * s * c + 4 * s * t * c;
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        var config = Config;
        _context = DeviceContext.Create(Device.Cpu);
        _block = new PixArtBlock(config);
        RandomWeights.Initialize(_block, _context, DType.F32, seed: 7);
        var random = new Random(1);
        Tensor Make(params long[] shape) =>
            Tensor.FromArray(_context, Enumerable.Range(0, (int)Shapes.Product(shape)).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), shape);
        _x = Make(1, Tokens, config.InnerDim);
        _timestep = Make(1, 6L * config.InnerDim);
        _caption = Make(1, CaptionTokens, config.InnerDim);
        using var output = _block.Forward(_x, _timestep, _caption, null);
        var writer = new SafetensorsWriter();
        foreach (var (path, parameter) in _block.NamedParameters()) writer.Add(path, parameter.Value);
        writer.Add("input.x", _x).Add("input.timestep", _timestep).Add("input.caption", _caption).Add("output", output);
        var folder = PeerCases();
        Directory.CreateDirectory(folder);
        writer.Save(Path.Combine(folder, $"pixart_sigma_block_{Tokens}.safetensors"));
    }

    [Benchmark]
    public void Forward()
    {
        using var output = _block.Forward(_x, _timestep, _caption, null);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in new[] { _x, _timestep, _caption }) t.Dispose();
        _block.Dispose();
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
