using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Tensors;

namespace XDit.Models.Vae;

/// <summary>The VAE mid-block's self-attention over all pixels: one head as wide as the channels,
/// after a GroupNorm, added back to the input.</summary>
public sealed class SpatialAttention : Module
{
    public SpatialAttention(int channels, int groups, double eps = 1e-6)
    {
        Norm = Child("group_norm", new GroupNorm(groups, channels, eps));
        Attention = Child("", new MultiHeadAttention(channels, heads: 1, headDim: channels));
    }

    public GroupNorm Norm { get; }
    public MultiHeadAttention Attention { get; }

    public Tensor Forward(Tensor x)
    {
        using var scope = new TensorScope();
        long n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        // [N, C, H, W] → tokens [N, H·W, C] (a transposed view: the projections read it in place).
        var tokens = Norm.Forward(x).View(n, c, h * w).Transpose(1, 2);
        var attended = Attention.Forward(tokens);
        var image = attended.Transpose(1, 2).Reshape(n, c, h, w);
        return Elementwise.Add(x, image).MoveToOuterScope();
    }
}
