using XDit.Tensors;

namespace XDit.Ops;

/// <summary>
/// Tensor rearrangements (concatenation, splitting, patch tokens, Flux packing, and the layouts of the
/// parallel methods in <c>Layout.Parallel.cs</c>). Each one is a view, or views joined by
/// <see cref="Elementwise.Copy"/>. Copy takes any strides on both sides on every backend, so these ops
/// need no kernels of their own and read strided inputs without packing them first. The exception is a
/// dimension that has to be split in two (H into H/p·p, say): a strided tensor has no view for that,
/// so a non-contiguous input there costs one extra copy through <see cref="Tensor.Reshape"/>.
/// </summary>
public static partial class Layout
{
    /// <summary>The tensors joined along <paramref name="dim"/> into a new tensor. They must share
    /// dtype, context and rank, and their shapes must match outside <paramref name="dim"/>.</summary>
    public static Tensor Cat(int dim, params Tensor[] tensors)
    {
        var shape = CatShape(dim, tensors);
        return Operands.NewOutput(tensors[0].Context, tensors[0].DType, shape, output => Cat(dim, tensors, output));
    }

    /// <summary>As <see cref="Cat(int, Tensor[])"/>, but writes into <paramref name="output"/> (any
    /// layout), e.g. a joint [text, image] buffer that is reused every step.</summary>
    public static void Cat(int dim, Tensor[] tensors, Tensor output)
    {
        var shape = CatShape(dim, tensors);
        CheckOutput("Cat", output, tensors[0], shape);
        var d = Shapes.NormalizeDim(dim, shape.Length);
        long start = 0;
        foreach (var t in tensors)
        {
            using var slot = output.Narrow(d, start, t.Size(d));
            Elementwise.Copy(t, slot);
            start += t.Size(d);
        }
    }

    /// <summary>Views of consecutive pieces of <paramref name="dim"/> with the given sizes, which
    /// must add up to that dimension's size. The caller disposes every view (or lets a scope do it).</summary>
    public static Tensor[] Split(Tensor t, int dim, params long[] sizes)
    {
        ArgumentNullException.ThrowIfNull(t);
        var d = Shapes.NormalizeDim(dim, t.Rank);
        if (sizes.Any(s => s < 0) || sizes.Sum() != t.Size(d))
            throw new ArgumentException(
                $"Split of {Describe(t)} along dimension {d}: the sizes {Shapes.ToString(sizes)} must be non-negative " +
                $"and add up to {t.Size(d)}");
        var views = new Tensor[sizes.Length];
        long start = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            views[i] = t.Narrow(d, start, sizes[i]);
            start += sizes[i];
        }
        return views;
    }

    /// <summary><paramref name="chunks"/> equal views along <paramref name="dim"/>. The dimension must
    /// divide evenly: unequal pieces would be a silent shape bug in a parallel split.</summary>
    public static Tensor[] Chunk(Tensor t, int chunks, int dim)
    {
        ArgumentNullException.ThrowIfNull(t);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunks, 1);
        var d = Shapes.NormalizeDim(dim, t.Rank);
        if (t.Size(d) % chunks != 0)
            throw new ArgumentException(
                $"Chunk of {Describe(t)} into {chunks} along dimension {d}: {t.Size(d)} is not divisible by {chunks}");
        return Split(t, d, Enumerable.Repeat(t.Size(d) / chunks, chunks).ToArray());
    }

    /// <summary>
    /// Latent NCHW [B, C, H, W] → tokens [B, (H/p)·(W/p), C·p·p]: what diffusers' <c>PatchEmbed</c> feeds its
    /// projection when that projection is a linear layer. Token (i, j) is row-major over the patch grid.
    /// Within a token the features are ordered (c, ph, pw), the order of a Conv2d weight with
    /// kernel = stride = p flattened to [out, C·p·p]. This is not the order <see cref="Unpatchify"/> reads.
    /// </summary>
    public static Tensor Patchify(Tensor latent, int patch) => Patchify("Patchify", latent, patch);

    /// <summary>
    /// Tokens [B, (H/p)·(W/p), p·p·C] → NCHW [B, C, H, W], as the final layer of diffusers' PixArt and SD3
    /// models does it (<c>reshape(-1, h, w, p, p, C)</c>, then <c>einsum("nhwpqc->nchpwq")</c>). Here the
    /// features of a token are ordered (ph, pw, c), channels fastest, unlike <see cref="Patchify"/>.
    /// <paramref name="height"/> and <paramref name="width"/> are the latent's, not the image's.
    /// </summary>
    public static Tensor Unpatchify(Tensor tokens, int height, int width, int patch, int channels) =>
        Depatchify("Unpatchify", tokens, height, width, patch, channels, channelsLast: true);

    /// <summary>
    /// Flux's 2×2 packing (<c>FluxPipeline._pack_latents</c>): [B, C, H, W] → [B, (H/2)·(W/2), 4C] through
    /// <c>view(B, C, H/2, 2, W/2, 2).permute(0, 2, 4, 1, 3, 5)</c>. That is <see cref="Patchify"/> with
    /// p = 2: features ordered (c, ph, pw).
    /// </summary>
    public static Tensor FluxPack(Tensor latents) => Patchify("FluxPack", latents, 2);

    /// <summary>
    /// The inverse of <see cref="FluxPack"/> (<c>FluxPipeline._unpack_latents</c>): [B, (H/2)·(W/2), 4C] →
    /// [B, C, H, W]. <paramref name="height"/> and <paramref name="width"/> are the LATENT height and
    /// width (both even). The pipeline passes image pixels and divides them by the VAE scale factor first.
    /// </summary>
    public static Tensor FluxUnpack(Tensor packed, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(packed);
        if (packed.Rank != 3 || packed.Size(2) % 4 != 0)
            throw new ArgumentException($"FluxUnpack: packed ({Describe(packed)}) must be [B, tokens, 4·C]");
        return Depatchify("FluxUnpack", packed, height, width, 2, packed.Size(2) / 4, channelsLast: false);
    }

    static Tensor Patchify(string op, Tensor latent, int patch)
    {
        ArgumentNullException.ThrowIfNull(latent);
        ArgumentOutOfRangeException.ThrowIfLessThan(patch, 1);
        if (latent.Rank != 4 || latent.Size(2) % patch != 0 || latent.Size(3) % patch != 0)
            throw new ArgumentException(
                $"{op}: the latent ({Describe(latent)}) must be [B, C, H, W] with H and W multiples of the patch size {patch}");
        long b = latent.Size(0), c = latent.Size(1), gh = latent.Size(2) / patch, gw = latent.Size(3) / patch;
        return Operands.NewOutput(latent.Context, latent.DType, [b, gh * gw, c * patch * patch], output =>
        {
            using var grid = latent.Reshape(b, c, gh, patch, gw, patch);
            using var tokenOrder = grid.Permute(0, 2, 4, 1, 3, 5);
            using var target = output.View(b, gh, gw, c, patch, patch);
            Elementwise.Copy(tokenOrder, target);
        });
    }

    /// <summary>Tokens → NCHW for either feature order: (ph, pw, c) when <paramref name="channelsLast"/>,
    /// else (c, ph, pw).</summary>
    static Tensor Depatchify(string op, Tensor tokens, long height, long width, int patch, long channels, bool channelsLast)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(patch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels, 1);
        if (height < 0 || width < 0 || height % patch != 0 || width % patch != 0)
            throw new ArgumentException($"{op}: the latent size {height}×{width} is not a multiple of the patch size {patch}");
        long gh = height / patch, gw = width / patch, features = patch * patch * channels;
        if (tokens.Rank != 3 || tokens.Size(1) != gh * gw || tokens.Size(2) != features)
            throw new ArgumentException(
                $"{op}: tokens ({Describe(tokens)}) must be [B, {gh * gw}, {features}] for a {height}×{width} latent " +
                $"with {channels} channels and patch size {patch}");
        var b = tokens.Size(0);
        return Operands.NewOutput(tokens.Context, tokens.DType, [b, channels, height, width], output =>
        {
            using var grid = channelsLast
                ? tokens.Reshape(b, gh, gw, patch, patch, channels)
                : tokens.Reshape(b, gh, gw, channels, patch, patch);
            using var imageOrder = channelsLast ? grid.Permute(0, 5, 1, 3, 2, 4) : grid.Permute(0, 3, 1, 4, 2, 5);
            using var target = output.View(b, channels, gh, patch, gw, patch);
            Elementwise.Copy(imageOrder, target);
        });
    }

    static long[] CatShape(int dim, Tensor[] tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Length == 0) throw new ArgumentException("Cat needs at least one tensor", nameof(tensors));
        foreach (var t in tensors) ArgumentNullException.ThrowIfNull(t, nameof(tensors));
        var first = tensors[0];
        Operands.SameContext(first, tensors);
        var d = Shapes.NormalizeDim(dim, first.Rank);
        var shape = first.Shape.ToArray();
        for (int i = 1; i < tensors.Length; i++)
        {
            var t = tensors[i];
            var matches = t.DType == first.DType && t.Rank == first.Rank;
            for (int k = 0; matches && k < t.Rank; k++)
                matches = k == d || t.Size(k) == first.Size(k);
            if (!matches)
                throw new ArgumentException(
                    $"Cat along dimension {d}: tensor {i} ({Describe(t)}) does not match tensor 0 ({Describe(first)}); " +
                    $"dtype, rank and every size except dimension {d} must be equal");
            shape[d] += t.Size(d);
        }
        return shape;
    }

    /// <summary>Rejects an output of another context, dtype or shape than the op produces.</summary>
    static void CheckOutput(string op, Tensor output, Tensor input, long[] shape)
    {
        ArgumentNullException.ThrowIfNull(output);
        Operands.SameContext(input, output);
        if (output.DType != input.DType || !Shapes.Equal(output.Shape, shape))
            throw new ArgumentException(
                $"{op}: output ({Describe(output)}) must be {input.DType.Name()} {Shapes.ToString(shape)}");
    }

    static string Describe(Tensor t) => $"{t.DType.Name()} {t.ShapeString}";
}
