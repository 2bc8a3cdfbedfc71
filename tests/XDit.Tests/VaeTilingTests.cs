using System.Text.Json;
using XDit.Models.Vae;
using XDit.Nn;
using XDit.Native;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>Tiled VAE decode and encode (diffusers' <c>enable_tiling()</c>) on the golden <c>vae</c> weights
/// (scale factor 2, sample_size 32): one tile is the plain pass; several tiles equal diffusers' formulas
/// applied in fp64 to tiles decoded (encoded) one by one with the plain pass; memory stays bounded.</summary>
[TestFixture]
public class VaeTilingTests
{
    static AutoencoderKL LoadGolden(DeviceContext context)
    {
        var folder = GoldenTensors.CaseFolder("vae");
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "config.json")));
        var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(json.RootElement));
        try
        {
            WeightLoader.Load(vae, new GoldenTensorSource(GoldenTensors.Load(Path.Combine(folder, "diffusion_pytorch_model.safetensors"))),
                context, DType.F32);
            return vae;
        }
        catch
        {
            vae.Dispose();
            throw;
        }
    }

    [Test]
    public void DefaultTilesComeFromTheConfigsSampleSize()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        Assert.That(VaeTiling.For(vae.Config), Is.EqualTo(new VaeTiling(32, 0.25)));
        Assert.That(vae.Tiling, Is.Null, "tiling is off unless asked for, as in diffusers");
        using var json = JsonDocument.Parse("""{"sample_size": [64, 48]}""");
        Assert.That(AutoencoderKLConfig.FromJson(json.RootElement).SampleSize, Is.EqualTo(64));
    }

    /// <summary>diffusers tiles only latents larger than one latent tile (32 / 2 = 16 here); up to that size the
    /// tiled call is the plain decode, bit for bit.</summary>
    [TestCase(12, 10)]
    [TestCase(16, 16)]
    public void OneTileIsThePlainPass(int height, int width)
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        var (latents, _) = Data.Random(context, 1, 1.0, 2, 4, height, width);
        var plain = vae.Decode(latents).ToArray<float>();
        Assert.That(vae.TiledDecode(latents).ToArray<float>(), Is.EqualTo(plain));
        var (image, _) = Data.Random(context, 2, 1.0, 1, 3, 2 * height, 2 * width);
        var (mean, logVariance) = vae.Encode(image);
        var (tiledMean, tiledLogVariance) = vae.TiledEncode(image);
        Assert.That(tiledMean.ToArray<float>(), Is.EqualTo(mean.ToArray<float>()));
        Assert.That(tiledLogVariance.ToArray<float>(), Is.EqualTo(logVariance.ToArray<float>()));
        vae.Tiling = new VaeTiling(2 * Math.Max(height, width));
        Assert.That(vae.Decode(latents).ToArray<float>(), Is.EqualTo(plain));
    }

    /// <summary>Tiles of 16 pixels (8 latents, every 6, blended over 4 pixels, 12 kept) on a 19 × 22 latent:
    /// 4 × 4 tiles, a non-last tile cut short (rows 12–18) and a last one a single latent row high, whose
    /// blend is shortened to 2 rows.</summary>
    [Test]
    public void TiledDecodeIsDiffusersBlendOfTileDecodes()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        var tiling = new VaeTiling(16);
        var (latents, _) = Data.Random(context, 3, 1.0, 2, 4, 19, 22);
        var tiled = vae.TiledDecode(latents, tiling);
        var expected = DiffusersTiled(latents, 8, 6, 4, 12, tile => Host(vae.Decode(tile)));
        Assert.That(tiled.Shape.ToArray(), Is.EqualTo(new long[] { 2, 3, 38, 44 }));
        var error = Reference.RelativeL2(tiled.ToArray<float>(), expected.Data);
        TestContext.Out.WriteLine($"tiled decode vs diffusers' formulas in fp64: relative L2 {error:E3}");
        Assert.That(error, Is.LessThan(1e-6));

        var plain = vae.Decode(latents).ToArray<float>();
        TestContext.Out.WriteLine($"tiled decode vs one-piece decode: relative L2 {Reference.RelativeL2(tiled.ToArray<float>(), plain):E3}");

        vae.Tiling = tiling;
        Assert.That(vae.Decode(latents).ToArray<float>(), Is.EqualTo(tiled.ToArray<float>()), "Decode follows Tiling");
    }

    /// <summary>Tiles of 16 pixels (every 12, moments blended over 2 latents, 6 kept) on a 38 × 44 image:
    /// a non-last tile cut short (rows 24–37) and a last one of 2 pixels (one latent row, blend of 1).</summary>
    [Test]
    public void TiledEncodeIsDiffusersBlendOfTileEncodes()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        var tiling = new VaeTiling(16);
        var (image, _) = Data.Random(context, 4, 1.0, 2, 3, 38, 44);
        var (mean, logVariance) = vae.TiledEncode(image, tiling);

        // diffusers blends the moments (mean and log-variance) and clamps after; the plain Encode clamps each
        // tile first. The two agree when no tile reaches the clamp, which is checked.
        var expected = DiffusersTiled(image, 16, 12, 2, 6, tile =>
        {
            var (tileMean, tileLogVariance) = vae.Encode(tile);
            var logVariances = Host(tileLogVariance);
            Assert.That(logVariances.Data, Has.All.InRange(-29.9, 19.9), "the clamp to [-30, 20] does not bite");
            return Host(tileMean).Concatenate(logVariances);
        });
        Assert.That(mean.Shape.ToArray(), Is.EqualTo(new long[] { 2, 4, 19, 22 }));
        var meanError = Reference.RelativeL2(mean.ToArray<float>(), expected.Channels(0, 4));
        var logVarianceError = Reference.RelativeL2(logVariance.ToArray<float>(), expected.Channels(4, 4));
        TestContext.Out.WriteLine($"tiled encode vs diffusers' formulas in fp64: relative L2 mean {meanError:E3}, log-variance {logVarianceError:E3}");
        Assert.That(meanError, Is.LessThan(1e-6), "mean");
        Assert.That(logVarianceError, Is.LessThan(1e-6), "log-variance");

        var (plainMean, plainLogVariance) = vae.Encode(image);
        TestContext.Out.WriteLine("tiled encode vs one-piece encode: relative L2 " +
                                  $"mean {Reference.RelativeL2(mean.ToArray<float>(), plainMean.ToArray<float>()):E3}, " +
                                  $"log-variance {Reference.RelativeL2(logVariance.ToArray<float>(), plainLogVariance.ToArray<float>()):E3}");
    }

    /// <summary>A tile sees neither its neighbours' pixels (its convolutions pad with zeros at its border) nor
    /// the whole image's GroupNorm statistics and attention, so tiled and one-piece results differ — in
    /// diffusers too — by an amount that falls as the tiles grow against the receptive field. Tiny tiles
    /// of this tiny VAE are far off; the measured relative L2 is printed.</summary>
    [Test]
    public void SeamsShrinkAsTilesGrow()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        var (latents, _) = Data.Random(context, 9, 1.0, 1, 4, 48, 48);
        var (image, _) = Data.Random(context, 10, 1.0, 1, 3, 96, 96);
        var plain = vae.Decode(latents).ToArray<float>();
        var plainMean = vae.Encode(image).Mean.ToArray<float>();
        var decodeErrors = new List<double>();
        var encodeErrors = new List<double>();
        foreach (var size in new[] { 16, 32, 64 })
        {
            decodeErrors.Add(Reference.RelativeL2(vae.TiledDecode(latents, new VaeTiling(size)).ToArray<float>(), plain));
            encodeErrors.Add(Reference.RelativeL2(vae.TiledEncode(image, new VaeTiling(size)).Mean.ToArray<float>(), plainMean));
            TestContext.Out.WriteLine($"tiles of {size} pixels: relative L2 to the one-piece pass: decode {decodeErrors[^1]:E3}, encode (mean) {encodeErrors[^1]:E3}");
        }
        Assert.That(decodeErrors, Is.Ordered.Descending);
        Assert.That(encodeErrors, Is.Ordered.Descending);
        Assert.That(decodeErrors[^1], Is.LessThan(0.2));
        Assert.That(encodeErrors[^1], Is.LessThan(0.2));
    }

    /// <summary>A 128 × 128 image (64 × 64 latent) in the config's 32-pixel tiles: the one-piece pass holds
    /// full-resolution activations and attention over 4096 latent pixels; the tiled one a 32 × 32 tile's
    /// and the output.</summary>
    [Test]
    public void TilesBoundThePeakMemory()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        var (latents, _) = Data.Random(context, 5, 1.0, 1, 4, 64, 64);
        var (image, _) = Data.Random(context, 6, 1.0, 1, 3, 128, 128);

        ulong Extra(Action pass)
        {
            context.ResetPeak();
            var before = context.AllocatorStats.BytesInUse;
            pass();
            return context.AllocatorStats.PeakBytesInUse - before;
        }

        var plainDecode = Extra(() => vae.Decode(latents).Dispose());
        var tiledDecode = Extra(() => vae.TiledDecode(latents).Dispose());
        var plainEncode = Extra(() => Dispose(vae.Encode(image)));
        var tiledEncode = Extra(() => Dispose(vae.TiledEncode(image)));
        TestContext.Out.WriteLine($"peak bytes beyond inputs: decode {plainDecode} one-piece, {tiledDecode} tiled; " +
                                  $"encode {plainEncode} one-piece, {tiledEncode} tiled");
        Assert.That(tiledDecode, Is.LessThan(plainDecode / 4), "decode");
        Assert.That(tiledEncode, Is.LessThan(plainEncode / 4), "encode");
    }

    [Test]
    public void InvalidTilesAreRejected()
    {
        using var context = Contexts.Cpu();
        using var vae = LoadGolden(context);
        using var scope = new TensorScope();
        Assert.That(Contexts.StatusOf(() => _ = new VaeTiling(0)), Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(Contexts.StatusOf(() => _ = new VaeTiling(-16)), Is.EqualTo(XditStatus.InvalidArgument));
        foreach (var overlap in new[] { -0.25, 1.0, double.NaN })
            Assert.That(Contexts.StatusOf(() => _ = new VaeTiling(32, overlap)), Is.EqualTo(XditStatus.InvalidArgument), $"overlap {overlap}");

        var (latents, _) = Data.Random(context, 7, 1.0, 1, 4, 20, 20);
        // 15 pixels is no whole number of latents; 10 pixels are 5 latents, of which 0.25 overlap is 1.25
        // (diffusers would decode this 20-latent side to 52 pixels, not 40); 2 pixels are one latent, with a stride of 0.
        foreach (var size in new[] { 15, 10, 2 })
        {
            var error = Assert.Throws<XDitException>(() => vae.Tiling = new VaeTiling(size))!;
            Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
            Assert.That(error.Message, Does.Contain($"{size} pixels"));
            Assert.That(Contexts.StatusOf(() => vae.TiledDecode(latents, new VaeTiling(size))), Is.EqualTo(XditStatus.InvalidArgument));
        }
        Assert.That(vae.Tiling, Is.Null, "a rejected setting leaves tiling off");

        var (oddImage, _) = Data.Random(context, 8, 1.0, 1, 3, 33, 40);
        Assert.That(Contexts.StatusOf(() => vae.TiledEncode(oddImage, new VaeTiling(16))), Is.EqualTo(XditStatus.InvalidArgument));
        using var flat = latents.View(4, 20, 20);
        Assert.That(Contexts.StatusOf(() => vae.TiledDecode(flat)), Is.EqualTo(XditStatus.InvalidArgument));
    }

    static void Dispose((Tensor Mean, Tensor LogVariance) posterior)
    {
        posterior.Mean.Dispose();
        posterior.LogVariance.Dispose();
    }

    /// <summary>[N, C, H, W] in fp64 on the host.</summary>
    sealed record HostImage(int N, int C, int H, int W, double[] Data)
    {
        public ref double this[int n, int c, int y, int x] => ref Data[((n * C + c) * H + y) * W + x];

        /// <summary>This image's channels followed by <paramref name="other"/>'s.</summary>
        public HostImage Concatenate(HostImage other)
        {
            var result = new HostImage(N, C + other.C, H, W, new double[N * (C + other.C) * H * W]);
            int plane = H * W;
            for (int n = 0; n < N; n++)
            {
                Array.Copy(Data, n * C * plane, result.Data, n * result.C * plane, C * plane);
                Array.Copy(other.Data, n * other.C * plane, result.Data, (n * result.C + C) * plane, other.C * plane);
            }
            return result;
        }

        /// <summary>Channels [start, start + count) as a row-major [N, count, H, W] array.</summary>
        public double[] Channels(int start, int count)
        {
            var result = new double[N * count * H * W];
            int plane = H * W;
            for (int n = 0; n < N; n++) Array.Copy(Data, (n * C + start) * plane, result, n * count * plane, count * plane);
            return result;
        }
    }

    static HostImage Host(Tensor t)
    {
        using (t)
        {
            var values = t.ToArray<float>();
            return new HostImage((int)t.Size(0), (int)t.Size(1), (int)t.Size(2), (int)t.Size(3), Array.ConvertAll(values, v => (double)v));
        }
    }

    /// <summary>diffusers' <c>tiled_decode</c> / <c>tiled_encode</c> as written there: process every tile,
    /// keep them all, blend each in place with the (already blended) tile above and then the one to its
    /// left, crop each to keep × keep and concatenate the crops.</summary>
    static HostImage DiffusersTiled(Tensor input, int tile, int stride, int blend, int keep, Func<Tensor, HostImage> process)
    {
        var rows = new List<List<HostImage>>();
        for (long i = 0; i < input.Size(2); i += stride)
        {
            var row = new List<HostImage>();
            for (long j = 0; j < input.Size(3); j += stride)
            {
                using var band = input.Narrow(2, i, Math.Min(tile, input.Size(2) - i));
                using var piece = band.Narrow(3, j, Math.Min(tile, input.Size(3) - j));
                row.Add(process(piece));
            }
            rows.Add(row);
        }
        for (int i = 0; i < rows.Count; i++)
        for (int j = 0; j < rows[i].Count; j++)
        {
            if (i > 0) BlendV(rows[i - 1][j], rows[i][j], blend);
            if (j > 0) BlendH(rows[i][j - 1], rows[i][j], blend);
        }
        var first = rows[0][0];
        int height = rows.Sum(r => Math.Min(keep, r[0].H)), width = rows[0].Sum(t => Math.Min(keep, t.W));
        var result = new HostImage(first.N, first.C, height, width, new double[first.N * first.C * height * width]);
        int top = 0;
        foreach (var row in rows)
        {
            int left = 0;
            foreach (var t in row)
            {
                for (int n = 0; n < t.N; n++)
                for (int c = 0; c < t.C; c++)
                for (int y = 0; y < Math.Min(keep, t.H); y++)
                for (int x = 0; x < Math.Min(keep, t.W); x++)
                    result[n, c, top + y, left + x] = t[n, c, y, x];
                left += Math.Min(keep, t.W);
            }
            top += Math.Min(keep, row[0].H);
        }
        return result;
    }

    static void BlendV(HostImage a, HostImage b, int blend)
    {
        var extent = Math.Min(Math.Min(a.H, b.H), blend);
        for (int y = 0; y < extent; y++)
        for (int n = 0; n < b.N; n++)
        for (int c = 0; c < b.C; c++)
        for (int x = 0; x < b.W; x++)
            b[n, c, y, x] = a[n, c, a.H - extent + y, x] * (1 - (double)y / extent) + b[n, c, y, x] * ((double)y / extent);
    }

    static void BlendH(HostImage a, HostImage b, int blend)
    {
        var extent = Math.Min(Math.Min(a.W, b.W), blend);
        for (int x = 0; x < extent; x++)
        for (int n = 0; n < b.N; n++)
        for (int c = 0; c < b.C; c++)
        for (int y = 0; y < b.H; y++)
            b[n, c, y, x] = a[n, c, y, a.W - extent + x] * (1 - (double)x / extent) + b[n, c, y, x] * ((double)x / extent);
    }
}
