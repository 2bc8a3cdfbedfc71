using System.Text.Json;
using BenchmarkDotNet.Attributes;
using XDit.Models.Flux;
using XDit.Models.PixArt;
using XDit.Models.SD3;
using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Pipelines;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Bench;

/// <summary>
/// One transformer block at full width, f32, random weights, batch 1, at the image-token counts of 512²
/// (1024) and 1024² (4096) images: PixArt-Σ's block (1152 channels, 16 heads of 72, cross-attention to
/// a 300-token caption; FLOPs 28·S·C² + 4·T·C² + 4·S²·C + 4·S·T·C) and SD3-medium's joint block (1536
/// channels, 24 heads of 64, the 333-token text stream — 77 CLIP + 256 T5 — attending with the image)
/// and FLUX.1-dev's double-stream block (3072 channels, 24 heads of 128, 512 T5 tokens, q/k RMS norms,
/// the 3-axis rotary embedding); both joint blocks' FLOPs are 24·(S+T)·C² + 4·(S+T)²·C. The setup writes the block's weights, inputs and the engine's output
/// to <c>BenchmarkDotNet.Artifacts/peers/blocks/</c>, where the peer (bench/peers/torch_cpu_blocks.py, run
/// by <c>build.ps1 bench-peers</c>) computes the same block in PyTorch, checks it against the engine's
/// output and times it on the same threads.
/// </summary>
[Config(typeof(BenchConfig))]
public class BlockBenchmarks : IFlopCounted
{
    const int CaptionTokens = 300, Sd3TextTokens = 77 + 256, FluxTextTokens = 512;

    DeviceContext _context = null!;
    Module _block = null!;
    Func<Tensor> _forward = null!;
    Tensor[] _inputs = [];

    [Params("pixart-sigma", "sd3-medium", "flux-dev")]
    public string Block { get; set; } = "pixart-sigma";

    [Params(1024, 4096)]
    public int Tokens { get; set; } = 1024;

    static PixArtConfig PixArt => PixArtConfig.FromJson(JsonSerializer.SerializeToElement(PixArtArchitecture.Get("pixart-sigma").Transformer));
    static SD3Config Sd3 => SD3Config.FromJson(JsonSerializer.SerializeToElement(SD3Architecture.Get("sd3-medium").Transformer));
    static FluxConfig Flux => FluxConfig.FromJson(JsonSerializer.SerializeToElement(FluxArchitecture.Get("flux-dev").Transformer));

    public double FlopsPerOperation
    {
        get
        {
            double s = Tokens;
            if (Block == "pixart-sigma")
            {
                double c = PixArt.InnerDim, t = CaptionTokens;
                return 28 * s * c * c + 4 * t * c * c + 4 * s * s * c + 4 * s * t * c;
            }
            var (width, joint) = Block == "sd3-medium" ? ((double)Sd3.InnerDim, s + Sd3TextTokens) : (Flux.InnerDim, s + FluxTextTokens);
            return 24 * joint * width * width + 4 * joint * joint * width;
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _context = DeviceContext.Create(Device.Cpu);
        var random = new Random(1);
        Tensor Make(params long[] shape) =>
            Tensor.FromArray(_context, Enumerable.Range(0, (int)Shapes.Product(shape)).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), shape);
        var writer = new SafetensorsWriter();
        if (Block == "pixart-sigma")
        {
            var config = PixArt;
            var block = new PixArtBlock(config);
            RandomWeights.Initialize(block, _context, DType.F32, seed: 7);
            var (x, timestep, caption) = (Make(1, Tokens, config.InnerDim), Make(1, 6L * config.InnerDim), Make(1, CaptionTokens, config.InnerDim));
            writer.Add("input.x", x).Add("input.timestep", timestep).Add("input.caption", caption);
            (_block, _inputs, _forward) = (block, [x, timestep, caption], () => block.Forward(x, timestep, caption, null));
        }
        else if (Block == "flux-dev")
        {
            var config = Flux;
            var block = new FluxTransformerBlock(config);
            RandomWeights.Initialize(block, _context, DType.F32, seed: 7);
            var (image, text, activated) = (Make(1, Tokens, config.InnerDim), Make(1, FluxTextTokens, config.InnerDim), Make(1, config.InnerDim));
            // The rotary tables [T + S, D] of the joint sequence, text first: FluxPosEmbed of (txt_ids, img_ids).
            var side = (int)Math.Sqrt(Tokens);
            var (cos, sin) = RotaryEmbedding.Flux([.. FluxPositionIds.Text(FluxTextTokens), .. FluxPositionIds.Image(side, side)], config.AxesDimsRope)
                .ToTensors(_context);
            writer.Add("input.image", image).Add("input.text", text).Add("input.activated", activated).Add("input.cos", cos).Add("input.sin", sin);
            var (headCos, headSin) = (cos.Unsqueeze(1), sin.Unsqueeze(1));
            (_block, _inputs) = (block, [image, text, activated, cos, sin, headCos, headSin]);
            _forward = () =>
            {
                var (textOut, imageOut) = block.Forward(text, image, activated, headCos, headSin);
                using (textOut) return imageOut;
            };
        }
        else
        {
            var config = Sd3;
            var block = new JointTransformerBlock(config, contextPreOnly: false, dualAttention: false);
            RandomWeights.Initialize(block, _context, DType.F32, seed: 7);
            // The conditioning after SiLU, as the model hands it to every block.
            var (image, text, activated) = (Make(1, Tokens, config.InnerDim), Make(1, Sd3TextTokens, config.InnerDim), Make(1, config.InnerDim));
            writer.Add("input.image", image).Add("input.text", text).Add("input.activated", activated);
            (_block, _inputs) = (block, [image, text, activated]);
            _forward = () =>
            {
                var (imageOut, textOut) = block.Forward(image, text, activated);
                using (textOut) return imageOut;
            };
        }
        foreach (var (path, parameter) in _block.NamedParameters()) writer.Add(path, parameter.Value);
        using var output = _forward();
        writer.Add("output", output);
        var folder = PeerCases();
        Directory.CreateDirectory(folder);
        writer.Save(Path.Combine(folder, $"{Block.Replace('-', '_')}_block_{Tokens}.safetensors"));
    }

    [Benchmark]
    public void Forward()
    {
        using var output = _forward();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        foreach (var t in _inputs) t.Dispose();
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
