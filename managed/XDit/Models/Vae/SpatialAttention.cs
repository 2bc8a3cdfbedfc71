using XDit.Nn;
using XDit.Nn.Layers;
using XDit.Ops;
using XDit.Parallel;
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

    /// <summary>With <paramref name="rows"/>, x is this rank's band of rows: its pixels' queries attend to
    /// every rank's pixels (keys and values from the gathered normed map).</summary>
    public Tensor Forward(Tensor x, RowShards? rows = null)
    {
        using var scope = new TensorScope();
        long n = x.Size(0), c = x.Size(1), h = x.Size(2), w = x.Size(3);
        // [N, C, H, W] → tokens [N, H·W, C] (a transposed view: the projections read it in place).
        var normed = rows?.GroupNorm(Norm, x) ?? Norm.Forward(x);
        var tokens = normed.View(n, c, h * w).Transpose(1, 2);
        var attended = rows is null ? Attention.Forward(tokens) : AttendToAllRows(tokens, rows, w);
        var image = attended.Transpose(1, 2).Reshape(n, c, h, w);
        return Elementwise.Add(x, image).MoveToOuterScope();
    }

    Tensor AttendToAllRows(Tensor tokens, RowShards rows, long width)
    {
        var (all, mask) = rows.GatherTokens(tokens.Contiguous(), width);
        Tensor Heads(Tensor t) => t.View(t.Size(0), t.Size(1), 1, t.Size(2));
        var q = Heads(Attention.ToQ.Forward(tokens));
        var k = Heads(Attention.ToK.Forward(all));
        var v = Heads(Attention.ToV.Forward(all));
        var attended = Ops.Attention.ScaledDotProduct(q, k, v, mask);
        return Attention.ToOut.Forward(attended.View(tokens.Size(0), tokens.Size(1), tokens.Size(2)));
    }
}
