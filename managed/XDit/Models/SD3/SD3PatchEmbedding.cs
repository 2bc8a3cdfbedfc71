using XDit.Nn;
using XDit.Nn.Embeddings;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.SD3;

/// <summary>
/// diffusers' <c>PatchEmbed</c> as SD3 uses it: a p×p, stride-p convolution (<c>proj</c>) to patch tokens,
/// plus the centred window of the stored 2-D sin-cos table <c>pos_embed</c> [1, max², C] that matches the
/// patch grid, so any latent up to <c>pos_embed_max_size</c> patches a side runs without recomputing it.
/// </summary>
public sealed class SD3PatchEmbedding : Module
{
    public SD3PatchEmbedding(SD3Config config)
    {
        PatchSize = config.PatchSize;
        MaxGridSize = config.PosEmbedMaxSize;
        Projection = Child("proj", new Conv2d(config.InChannels, config.InnerDim, config.PatchSize, config.PatchSize));
        PositionTable = Param("pos_embed", 1, (long)MaxGridSize * MaxGridSize, config.InnerDim);
    }

    public int PatchSize { get; }
    /// <summary>diffusers' <c>pos_embed_max_size</c>: the side of the stored table's patch grid.</summary>
    public int MaxGridSize { get; }
    public Conv2d Projection { get; }
    public Parameter PositionTable { get; }

    /// <summary>latents [B, in, H, W] → tokens [B, (H/p)·(W/p), C], row-major over the patch grid.</summary>
    public Tensor Forward(Tensor latents) => Forward(latents, 0, latents.Size(2) / PatchSize);

    /// <summary>The tokens of <paramref name="latents"/>, which are token rows <paramref name="gridRowStart"/> ..
    /// of a latent <paramref name="gridRows"/> token rows high (a PipeFusion band): their positions are
    /// those rows of the whole latent's table window.</summary>
    public Tensor Forward(Tensor latents, long gridRowStart, long gridRows)
    {
        using var scope = new TensorScope();
        var p = PatchSize;
        var weight = Projection.Weight.Value;
        // The conv as a GEMM over patchified latents: its weight read as [C, in·p·p] has the patch
        // features in Patchify's (c, ph, pw) order.
        var patches = Layout.Patchify(latents, p);
        var projected = MatMul.Gemm(patches, weight.View(weight.Size(0), -1), Projection.Bias!.Value);
        var (bandRows, gridWidth) = (latents.Size(2) / p, latents.Size(3) / p);
        // The band's rows of the whole latent's table window, added in place through views (no copy of
        // the table, whatever the band).
        var positions = SinCosPositionEmbedding.CenterWindow(PositionTable.Value, (int)gridRows, (int)gridWidth)
            .Narrow(0, gridRowStart, bandRows);
        var tokens = projected.View(projected.Size(0), bandRows, gridWidth, projected.Size(2));
        Elementwise.Add(tokens, positions.Unsqueeze(0), tokens);
        return projected.MoveToOuterScope();
    }
}
