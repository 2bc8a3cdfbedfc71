using System.Runtime.InteropServices;
using XDit.Models.Flux;
using XDit.Models.PixArt;
using XDit.Models.SD3;
using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>
/// One transformer block of a real-size model at full width, random weights and inputs, batch 1, at a given
/// image-token count: PixArt-Σ's block (1152 channels, 16 heads of 72, cross-attention to a 300-token
/// caption; FLOPs 28·S·C² + 4·T·C² + 4·S²·C + 4·S·T·C), SD3-medium's joint block (1536 channels, 24 heads of
/// 64, the 333-token text stream — 77 CLIP + 256 T5 — attending with the image) and FLUX.1-dev's
/// double-stream block (3072 channels, 24 heads of 128, 512 T5 tokens, q/k RMS norms, the 3-axis rotary
/// embedding); both joint blocks' FLOPs are 24·(S+T)·C² + 4·(S+T)²·C. What the block benchmarks time
/// (BlockBenchmarks on the CPU, <c>xdit bench --blocks</c> on any device), and what the PyTorch peers
/// (bench/peers/torch_cpu_blocks.py, bench/gpu/torch_blocks.py) recompute from <see cref="WritePeerCase"/>'s file.
/// </summary>
public sealed class BlockBenchmarkCase : IDisposable
{
    public const int CaptionTokens = 300, Sd3TextTokens = 77 + 256, FluxTextTokens = 512;

    public static IReadOnlyList<string> Blocks { get; } = ["pixart-sigma", "sd3-medium", "flux-dev"];

    readonly Module _module;
    readonly List<(string Name, Tensor Value)> _inputs;
    readonly Func<Tensor> _forward;

    BlockBenchmarkCase(string block, int tokens, Module module, List<(string, Tensor)> inputs, Func<Tensor> forward)
    {
        Block = block;
        Tokens = tokens;
        _module = module;
        _inputs = inputs;
        _forward = forward;
    }

    public string Block { get; }

    /// <summary>Image tokens (a square latent of √Tokens patches a side).</summary>
    public int Tokens { get; }

    /// <summary>Floating-point operations of one forward pass (<see cref="FlopsOf"/>).</summary>
    public double Flops => FlopsOf(Block, Tokens);

    /// <summary>The block's image-stream output for the case's inputs (a new tensor).</summary>
    public Tensor Forward() => _forward();

    static PixArtConfig PixArt => PixArtConfig.FromJson(RandomFolderWriter.ToElement(PixArtArchitecture.Get("pixart-sigma").Transformer));
    static SD3Config Sd3 => SD3Config.FromJson(RandomFolderWriter.ToElement(SD3Architecture.Get("sd3-medium").Transformer));
    static FluxConfig Flux => FluxConfig.FromJson(RandomFolderWriter.ToElement(FluxArchitecture.Get("flux-dev").Transformer));

    /// <summary>Floating-point operations of one forward pass of <paramref name="block"/> at <paramref name="tokens"/>
    /// image tokens (matrix products and attention).</summary>
    public static double FlopsOf(string block, int tokens)
    {
        double s = tokens;
        switch (block)
        {
            case "pixart-sigma":
                double c = PixArt.InnerDim, t = CaptionTokens;
                return 28 * s * c * c + 4 * t * c * c + 4 * s * s * c + 4 * s * t * c;
            case "sd3-medium":
                return JointFlops(s + Sd3TextTokens, Sd3.InnerDim);
            case "flux-dev":
                return JointFlops(s + FluxTextTokens, Flux.InnerDim);
            default:
                throw new XDitException(Native.XditStatus.InvalidArgument, $"unknown block '{block}' (known: {string.Join(", ", Blocks)})");
        }
    }

    /// <param name="block">One of <see cref="Blocks"/>.</param>
    /// <param name="tokens">Image tokens; a square number for Flux (its rotary positions are a grid).</param>
    public static BlockBenchmarkCase Create(string block, int tokens, DeviceContext context, DType dtype)
    {
        ArgumentNullException.ThrowIfNull(context);
        var random = new Random(1);
        var inputs = new List<(string, Tensor)>();
        Tensor Input(string name, params long[] shape)
        {
            var values = new float[Shapes.Product(shape)];
            for (int i = 0; i < values.Length; i++) values[i] = (float)random.NextDouble() - 0.5f;
            using var f32 = Tensor.FromArray(context, values, shape);
            var t = f32.To(dtype).MoveToOuterScope(null);
            inputs.Add((name, t));
            return t;
        }
        switch (block)
        {
            case "pixart-sigma":
            {
                var config = PixArt;
                var module = new PixArtBlock(config);
                RandomWeights.Initialize(module, context, dtype, seed: 7);
                var (x, timestep, caption) = (Input("input.x", 1, tokens, config.InnerDim), Input("input.timestep", 1, 6L * config.InnerDim),
                    Input("input.caption", 1, CaptionTokens, config.InnerDim));
                return new(block, tokens, module, inputs, () => module.Forward(x, timestep, caption, null));
            }
            case "sd3-medium":
            {
                var config = Sd3;
                var module = new JointTransformerBlock(config, contextPreOnly: false, dualAttention: false);
                RandomWeights.Initialize(module, context, dtype, seed: 7);
                // The conditioning after SiLU, as the model hands it to every block.
                var (image, text, activated) = (Input("input.image", 1, tokens, config.InnerDim),
                    Input("input.text", 1, Sd3TextTokens, config.InnerDim), Input("input.activated", 1, config.InnerDim));
                return new(block, tokens, module, inputs, () =>
                {
                    var (imageOut, textOut) = module.Forward(image, text, activated);
                    using (textOut) return imageOut;
                });
            }
            case "flux-dev":
            {
                var config = Flux;
                var side = (int)Math.Round(Math.Sqrt(tokens));
                if (side * side != tokens)
                    throw new XDitException(Native.XditStatus.InvalidArgument, $"the Flux block's image tokens form a square grid; {tokens} is not a square");
                var module = new FluxTransformerBlock(config);
                RandomWeights.Initialize(module, context, dtype, seed: 7);
                var (image, text, activated) = (Input("input.image", 1, tokens, config.InnerDim),
                    Input("input.text", 1, FluxTextTokens, config.InnerDim), Input("input.activated", 1, config.InnerDim));
                // The rotary tables [T + S, D] of the joint sequence, text first: FluxPosEmbed of (txt_ids, img_ids).
                var (cos, sin) = RotaryEmbedding.Flux([.. FluxPositionIds.Text(FluxTextTokens), .. FluxPositionIds.Image(side, side)], config.AxesDimsRope)
                    .ToTensors(context);
                inputs.Add(("input.cos", cos));
                inputs.Add(("input.sin", sin));
                var (headCos, headSin) = (cos.Unsqueeze(1), sin.Unsqueeze(1));
                inputs.Add(("", headCos));
                inputs.Add(("", headSin));
                return new(block, tokens, module, inputs, () =>
                {
                    var (textOut, imageOut) = module.Forward(text, image, activated, headCos, headSin);
                    using (textOut) return imageOut;
                });
            }
            default:
                throw new XDitException(Native.XditStatus.InvalidArgument, $"unknown block '{block}' (known: {string.Join(", ", Blocks)})");
        }
    }

    static double JointFlops(double sequence, double width) => 24 * sequence * width * width + 4 * sequence * sequence * width;

    /// <summary>Writes the block's weights (under their checkpoint names), its named inputs and
    /// <paramref name="output"/> as f32 safetensors: what the PyTorch peers read.</summary>
    public void WritePeerCase(string path, Tensor output)
    {
        var writer = new SafetensorsWriter();
        void Add(string name, Tensor t)
        {
            using var f32 = t.To(DType.F32);
            writer.Add(name, SafetensorsDType.F32, t.Shape.ToArray(), MemoryMarshal.AsBytes(f32.ToArray<float>().AsSpan()).ToArray());
        }
        foreach (var (name, value) in _inputs.Where(i => i.Name.Length > 0)) Add(name, value);
        foreach (var (name, parameter) in _module.NamedParameters()) Add(name, parameter.Value);
        Add("output", output);
        writer.Save(path);
    }

    /// <summary>The peer case's file name: pixart_sigma_block_4096.safetensors.</summary>
    public string PeerCaseName => $"{Block.Replace('-', '_')}_block_{Tokens}.safetensors";

    public void Dispose()
    {
        foreach (var (_, t) in _inputs) t.Dispose();
        _module.Dispose();
    }
}
