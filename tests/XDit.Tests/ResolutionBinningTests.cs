using System.Text.Json.Nodes;
using XDit.Imaging;
using XDit.Models.Vae;
using XDit.Nn;
using XDit.Pipelines;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>PixArt's resolution binning: classification against entries of diffusers' published
/// <c>ASPECT_RATIO_*_BIN</c> tables worked out by hand, the bilinear resize against an fp64 loop of
/// PyTorch's <c>align_corners=False</c> rule, the cover-and-crop sizes of <c>resize_and_crop_tensor</c>,
/// and the pipeline generating at the bin and handing back the requested size.</summary>
[TestFixture]
public class ResolutionBinningTests
{
    // ---- the tables and classification --------------------------------------------------------

    [Test]
    public void TablesAreThePublishedOnes()
    {
        Assert.That(AspectRatioBins.Bins256, Has.Count.EqualTo(33));
        Assert.That(AspectRatioBins.Bins512, Has.Count.EqualTo(33));
        Assert.That(AspectRatioBins.Bins1024, Has.Count.EqualTo(33));
        Assert.That(AspectRatioBins.Bins2048, Has.Count.EqualTo(40));
        Assert.That(AspectRatioBins.Bins1024[0], Is.EqualTo(new AspectRatioBin("0.25", 512, 2048)));
        Assert.That(AspectRatioBins.Bins1024[1], Is.EqualTo(new AspectRatioBin("0.28", 512, 1856)));
        Assert.That(AspectRatioBins.Bins1024[18], Is.EqualTo(new AspectRatioBin("1.0", 1024, 1024)));
        Assert.That(AspectRatioBins.Bins1024[^1], Is.EqualTo(new AspectRatioBin("4.0", 2048, 512)));
        Assert.That(AspectRatioBins.Bins512[1], Is.EqualTo(new AspectRatioBin("0.28", 256, 928)));
        Assert.That(AspectRatioBins.Bins256[1], Is.EqualTo(new AspectRatioBin("0.28", 128, 464)));
        Assert.That(AspectRatioBins.Bins256[^2], Is.EqualTo(new AspectRatioBin("3.0", 432, 144)));
        // PixArt-Σ's 2K table has keys of its own at the extremes.
        Assert.That(AspectRatioBins.Bins2048.Select(b => b.Ratio).Take(4), Is.EqualTo(new[] { "0.25", "0.26", "0.27", "0.28" }));
        Assert.That(AspectRatioBins.Bins2048.Select(b => b.Ratio).TakeLast(9),
            Is.EqualTo(new[] { "2.4", "2.5", "2.89", "3.0", "3.11", "3.62", "3.75", "3.88", "4.0" }));
        Assert.That(AspectRatioBins.Bins2048[33], Is.EqualTo(new AspectRatioBin("2.89", 3328, 1152)));
        Assert.That(AspectRatioBins.Bins2048[35], Is.EqualTo(new AspectRatioBin("3.11", 3584, 1152)));
        foreach (var table in new[] { AspectRatioBins.Bins256, AspectRatioBins.Bins512, AspectRatioBins.Bins1024, AspectRatioBins.Bins2048 })
        {
            var keys = table.Select(b => b.RatioValue).ToArray();
            Assert.That(keys, Is.Ordered.Ascending.And.Unique, "keys ascend, so the earlier of two tied bins is the smaller ratio");
            Assert.That(table.All(b => b.Height % 16 == 0 && b.Width % 16 == 0), "every bin is a multiple of the VAE factor × patch size");
        }
    }

    [Test]
    public void SampleSizePicksTheTable()
    {
        Assert.That(AspectRatioBins.ForSampleSize(32, sigma: false), Is.SameAs(AspectRatioBins.Bins256));
        Assert.That(AspectRatioBins.ForSampleSize(64, sigma: false), Is.SameAs(AspectRatioBins.Bins512));
        Assert.That(AspectRatioBins.ForSampleSize(128, sigma: false), Is.SameAs(AspectRatioBins.Bins1024));
        Assert.That(AspectRatioBins.ForSampleSize(128, sigma: true), Is.SameAs(AspectRatioBins.Bins1024));
        Assert.That(AspectRatioBins.ForSampleSize(256, sigma: true), Is.SameAs(AspectRatioBins.Bins2048));
        Assert.That(AspectRatioBins.ForSampleSize(256, sigma: false), Is.Null, "PixArt-α has no 2K table");
        Assert.That(AspectRatioBins.ForSampleSize(16, sigma: false), Is.Null, "the built-in tiny model");
    }

    // Expected bins worked out by hand: |key − height/width| for the neighbouring keys.
    [TestCase(1024, 1024, 1024, "1.0", 1024, 1024)]
    [TestCase(512, 768, 1024, "0.68", 832, 1216)]    // 0.667: 0.68 is 0.013 away, 0.6 is 0.067
    [TestCase(768, 512, 1024, "1.46", 1216, 832)]    // 1.5: 1.46 is 0.04 away, 1.67 is 0.17
    [TestCase(720, 1280, 1024, "0.57", 768, 1344)]   // 0.5625: 0.57 is 0.0075 away, 0.52 is 0.0425
    [TestCase(64, 4096, 1024, "0.25", 512, 2048)]    // beyond the table: its first entry
    [TestCase(4096, 64, 1024, "4.0", 2048, 512)]     // and its last
    [TestCase(768, 1024, 1024, "0.72", 832, 1152)]   // 0.75: 0.72 and 0.78 both exactly 0.030000000000000027 away; the first wins
    [TestCase(1000, 800, 1024, "1.21", 1088, 896)]   // 1.25: 1.21 and 1.29 tie the same way
    [TestCase(120, 64, 1024, "1.75", 1344, 768)]     // 1.875: 1.75 and 2.0 tie
    [TestCase(56, 16, 1024, "3.0", 1728, 576)]       // 3.5: 3.0 and 4.0 tie
    [TestCase(800, 1000, 1024, "0.82", 896, 1088)]   // 0.8 is midway on paper, but in doubles 0.82 is 0.0199999999999999 away and 0.78 is 0.0200000000000000
    [TestCase(512, 512, 512, "1.0", 512, 512)]
    [TestCase(256, 1024, 512, "0.25", 256, 1024)]
    [TestCase(300, 200, 256, "1.46", 304, 208)]
    [TestCase(3000, 1000, 2048, "3.0", 3456, 1152)]
    [TestCase(2900, 1000, 2048, "2.89", 3328, 1152)] // keys only the 2K table has
    [TestCase(1000, 3000, 2048, "0.33", 1152, 3456)]
    [TestCase(1024, 3900, 2048, "0.26", 1024, 3968)] // 0.2626: 0.26 is 0.0026 away, 0.27 is 0.0074
    public void ClassifyPicksTheClosestKey(int height, int width, int table, string ratio, int binHeight, int binWidth)
    {
        var bins = table switch
        {
            256 => AspectRatioBins.Bins256,
            512 => AspectRatioBins.Bins512,
            1024 => AspectRatioBins.Bins1024,
            _ => AspectRatioBins.Bins2048,
        };
        Assert.That(AspectRatioBins.Classify(height, width, bins), Is.EqualTo(new AspectRatioBin(ratio, binHeight, binWidth)));
    }

    [Test]
    public void ClassifyRejectsEmptySizes()
    {
        var error = Assert.Throws<XDitException>(() => AspectRatioBins.Classify(0, 512, AspectRatioBins.Bins1024))!;
        Assert.That(error.Status, Is.EqualTo(Native.XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("0x512"));
    }

    // ---- cover and crop -----------------------------------------------------------------------

    // scale = max(target h / h, target w / w); resized = int(size × scale); offsets = (resized − target) // 2.
    [TestCase(832, 1216, 512, 768, 525, 768, 6, 0)]     // scale 12/19: 832·12/19 = 525.47
    [TestCase(1216, 832, 768, 512, 768, 525, 0, 6)]
    [TestCase(832, 1152, 768, 1024, 768, 1063, 0, 19)]  // scale 12/13: 1152·12/13 = 1063.38
    [TestCase(1024, 1024, 2048, 2048, 2048, 2048, 0, 0)]
    [TestCase(1024, 1024, 1024, 1024, 1024, 1024, 0, 0)]
    [TestCase(10, 20, 6, 6, 6, 12, 0, 3)]
    [TestCase(6, 4, 9, 15, 22, 15, 6, 0)]               // scale 3.75: 6·3.75 = 22.5
    [TestCase(1472, 704, 104, 48, 104, 49, 0, 0)]       // 704·104/1472 = 49.74
    public void CoverCropMatchesResizeAndCropTensor(int height, int width, int targetHeight, int targetWidth,
        int resizedHeight, int resizedWidth, int top, int left) =>
        Assert.That(CoverCrop.For(height, width, targetHeight, targetWidth), Is.EqualTo(new CoverCrop(resizedHeight, resizedWidth, top, left)));

    [Test]
    public void CoverCropNeverFallsShortOfTheTarget()
    {
        // A 960×1280 request on PixArt 1024 gets the 832×1152 bin; diffusers scales by 960/832 and
        // truncates 832·(960/832), which is 959.999… in doubles, to 959.
        Assert.That((int)(832 * (960.0 / 832)), Is.EqualTo(959));
        Assert.That(CoverCrop.For(832, 1152, 960, 1280), Is.EqualTo(new CoverCrop(960, 1329, 0, 24)));  // 1152·15/13 = 1329.23
        Assert.That(CoverCrop.For(1472, 704, 104, 48).ResizedHeight, Is.EqualTo(104), "1472·(104/1472) = 103.999… in doubles");
    }

    // ---- bilinear resize ----------------------------------------------------------------------

    /// <summary>PyTorch's bilinear rule with align_corners=False in fp64: output pixel i samples source
    /// coordinate (i + ½)·in/out − ½, clamped at 0, between the floor and the next pixel (clamped at the edge).</summary>
    static double[] BilinearReference(float[] images, int planes, int height, int width, int outHeight, int outWidth)
    {
        (int Low, int High, double Frac)[] Axis(int input, int output) => Enumerable.Range(0, output).Select(i =>
        {
            var source = Math.Max((i + 0.5) * input / output - 0.5, 0);
            var low = Math.Min((int)Math.Floor(source), input - 1);
            return (low, Math.Min(low + 1, input - 1), source - low);
        }).ToArray();
        var rows = Axis(height, outHeight);
        var columns = Axis(width, outWidth);
        var result = new double[planes * outHeight * outWidth];
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < outHeight; y++)
                for (int x = 0; x < outWidth; x++)
                {
                    double At(int r, int c) => images[(p * height + r) * width + c];
                    var (r0, r1, fy) = rows[y];
                    var (c0, c1, fx) = columns[x];
                    result[(p * outHeight + y) * outWidth + x] =
                        (1 - fy) * ((1 - fx) * At(r0, c0) + fx * At(r0, c1)) + fy * ((1 - fx) * At(r1, c0) + fx * At(r1, c1));
                }
        return result;
    }

    /// <summary>The engine, like PyTorch, computes source coordinates in fp32: one near pixel 30 is off by
    /// up to 2e-6 of a pixel, which moves an output by that fraction of its neighbours' difference.</summary>
    const double Fp32Coordinates = 1e-5;

    [TestCase(2, 3, 5, 7, 12, 17)]     // up by 2.4 and 2.43
    [TestCase(1, 3, 16, 20, 7, 9)]     // down by 2.29 and 2.22
    [TestCase(1, 2, 6, 10, 13, 4)]     // up one way, down the other
    [TestCase(1, 1, 8, 8, 8, 8)]       // same size: a copy
    [TestCase(1, 1, 1, 1, 3, 3)]       // a single pixel spreads
    [TestCase(1, 3, 32, 48, 21, 29)]
    public void BilinearMatchesFp64Reference(int n, int c, int height, int width, int outHeight, int outWidth)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (images, values) = Data.Random(context, seed: height * 31 + outWidth, scale: 1.0, n, c, height, width);
        var resized = ImageResize.Bilinear(images, outHeight, outWidth);
        Assert.That(resized.Shape.ToArray(), Is.EqualTo(new long[] { n, c, outHeight, outWidth }));
        var expected = BilinearReference(values, n * c, height, width, outHeight, outWidth);
        Assert.That(Reference.RelativeL2(resized.ToArray<float>(), expected), Is.LessThan(Fp32Coordinates));
        if (height == outHeight && width == outWidth) Assert.That(resized.ToArray<float>(), Is.EqualTo(values));
    }

    [Test]
    public void BilinearOfACornerImpulseFollowsTheHalfPixelRule()
    {
        // 2 → 4 columns (rows keep their size): the outputs sample −0.25 (clamped to 0), 0.25, 0.75 and 1.25
        // (past the last pixel: the edge), so a row [1, 0] becomes [1, 0.75, 0.25, 0].
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var images = Tensor.FromArray(context, new float[] { 1, 0, 1, 0 }, 1, 1, 2, 2);
        var resized = ImageResize.Bilinear(images, 2, 4).ToArray<float>();
        Assert.That(resized, Is.EqualTo(new float[] { 1, 0.75f, 0.25f, 0, 1, 0.75f, 0.25f, 0 }));
    }

    [TestCase(10, 20, 6, 6, 6, 12, 0, 3)]   // down, cropped left and right
    [TestCase(6, 4, 9, 15, 22, 15, 6, 0)]   // up, cropped top and bottom
    [TestCase(13, 9, 13, 9, 13, 9, 0, 0)]   // already the size
    public void ResizeAndCropIsTheCenteredWindowOfTheResize(int height, int width, int targetHeight, int targetWidth,
        int resizedHeight, int resizedWidth, int top, int left)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (images, values) = Data.Random(context, DType.BF16, seed: 3, scale: 1.0, 2, 3, height, width);
        var result = ImageResize.ResizeAndCrop(images, targetHeight, targetWidth);
        Assert.That(result.DType, Is.EqualTo(DType.F32));
        Assert.That(result.Shape.ToArray(), Is.EqualTo(new long[] { 2, 3, targetHeight, targetWidth }));
        var full = BilinearReference(values, 6, height, width, resizedHeight, resizedWidth);
        var expected = new double[6 * targetHeight * targetWidth];
        for (int p = 0; p < 6; p++)
            for (int y = 0; y < targetHeight; y++)
                for (int x = 0; x < targetWidth; x++)
                    expected[(p * targetHeight + y) * targetWidth + x] = full[(p * resizedHeight + top + y) * resizedWidth + left + x];
        Assert.That(Reference.RelativeL2(result.ToArray<float>(), expected), Is.LessThan(Fp32Coordinates));
    }

    [Test]
    public void ResizeRejectsWhatIsNotAnImageBatch()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var flat = Tensor.Zeros(context, DType.F32, 3, 8, 8);
        Assert.That(Assert.Throws<XDitException>(() => ImageResize.ResizeAndCrop(flat, 4, 4))!.Message, Does.Contain("[N, C, H, W]"));
        var images = Tensor.Zeros(context, DType.F32, 1, 3, 8, 8);
        Assert.That(Assert.Throws<XDitException>(() => ImageResize.Bilinear(images, 0, 4))!.Status, Is.EqualTo(Native.XditStatus.InvalidArgument));
        Assert.That(Assert.Throws<XDitException>(() => ImageResize.ResizeAndCrop(images, 4, -1))!.Message, Does.Contain("4x-1"));
    }

    // ---- the pipeline ---------------------------------------------------------------------------

    [Test]
    public void TinyModelHasNoTableAndGeneratesAtTheRequestedSize()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-binning-tiny").FullName;
        try
        {
            PixArtArchitecture.Get("tiny-pixart").WriteRandomFolder(folder, seed: 3, DType.F32);
            using var context = Contexts.Cpu();
            using var pipeline = PixArtPipeline.Load(folder, context);
            var request = new GenerationRequest { Prompts = ["a boat"], Height = 64, Width = 128, Steps = 1, MaxSequenceLength = 16 };
            Assert.That(request.UseResolutionBinning, "on by default, as in diffusers");
            Assert.That(pipeline.ResolutionBin(request), Is.Null);
            var result = pipeline.Generate(request);
            Assert.That(result.ResolutionBin, Is.Null);
            Assert.That(result.LatentShape, Is.EqualTo(new long[] { 1, 4, 8, 16 }));
            Assert.That(result.Images[0], Has.Length.EqualTo(64 * 128 * 3));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void RealLayoutGeneratesAtTheBinAndReturnsTheRequestedSize()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-binning-sigma").FullName;
        try
        {
            // PixArt-Σ's transformer layout (sample_size 128: the 1024 table) at reduced width; the VAE keeps its
            // four levels but is narrowed further and loses its mid-block attention, since decoding the
            // 832×1216 bin twice on the CPU is what this test spends its time on.
            var architecture = PixArtArchitecture.Get("pixart-sigma").Reduced(factor: 16, layers: 2);
            var vaeConfig = (JsonObject)architecture.Vae.DeepClone();
            vaeConfig["block_out_channels"] = new JsonArray(4, 4, 4, 4);
            vaeConfig["layers_per_block"] = 1;
            vaeConfig["norm_num_groups"] = 2;
            vaeConfig["mid_block_add_attention"] = false;
            (architecture with { Vae = vaeConfig }).WriteRandomFolder(folder, seed: 5, DType.F32);
            using var context = Contexts.Cpu();
            using var pipeline = PixArtPipeline.Load(folder, context);
            var request = new GenerationRequest { Prompts = ["a lighthouse"], Height = 512, Width = 768, Steps = 1, GuidanceScale = 1, MaxSequenceLength = 16 };
            var expectedBin = new AspectRatioBin("0.68", 832, 1216);
            Assert.That(pipeline.GenerationSize(request), Is.EqualTo((832, 1216)));
            using (var initial = pipeline.InitialLatents(request)) Assert.That(initial.Shape.ToArray(), Is.EqualTo(new long[] { 1, 4, 104, 152 }));

            var result = pipeline.Generate(request);
            Assert.That(result.ResolutionBin, Is.EqualTo(expectedBin));
            Assert.That(result.LatentShape, Is.EqualTo(new long[] { 1, 4, 104, 152 }), "denoised at 832×1216");
            Assert.That((result.Width, result.Height), Is.EqualTo((768, 512)));
            Assert.That(result.Images[0], Has.Length.EqualTo(512 * 768 * 3));

            // The same latents decoded by a separately loaded VAE, resized and cropped by the fp64 loop
            // (832×1216 → 525×768, rows 6..517), then converted as diffusers' postprocess does.
            var diffusers = DiffusersFolder.Open(folder);
            using var vae = new AutoencoderKL(AutoencoderKLConfig.FromJson(diffusers.Config("vae").Root));
            using (var weights = diffusers.OpenWeights("vae")) WeightLoader.Load(vae, weights, context, DType.F32, sourceName: "VAE checkpoint");
            float[] decoded;
            using (var scope = new TensorScope())
                decoded = vae.DecodeScaled(Tensor.FromArray(context, result.Latents, result.LatentShape)).ToArray<float>();
            var resized = BilinearReference(decoded, 3, 832, 1216, 525, 768);
            int worst = 0, equal = 0;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < 512; y++)
                    for (int x = 0; x < 768; x++)
                    {
                        var unit = Math.Clamp(resized[(c * 525 + 6 + y) * 768 + x] / 2 + 0.5, 0, 1);
                        var difference = Math.Abs(result.Images[0][(y * 768 + x) * 3 + c] - (int)Math.Round(unit * 255, MidpointRounding.ToEven));
                        worst = Math.Max(worst, difference);
                        if (difference == 0) equal++;
                    }
            // The random VAE's image changes from pixel to pixel (a crop one row off differs by up to 255).
            Assert.That(result.Images[0].Distinct().Count(), Is.GreaterThan(200));
            Assert.That(worst, Is.LessThanOrEqualTo(1), "bytes within one level of the fp64 resize (fp32 rounding at half-levels)");
            Assert.That(equal, Is.GreaterThan(0.995 * 3 * 512 * 768), "and almost all of them equal");

            var unbinned = pipeline.Generate(request with { UseResolutionBinning = false, LatentsOnly = true });
            Assert.That(unbinned.ResolutionBin, Is.Null);
            Assert.That(unbinned.LatentShape, Is.EqualTo(new long[] { 1, 4, 64, 96 }));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void BinningAcceptsSizesTheModelCannotGenerateDirectly()
    {
        var folder = Directory.CreateTempSubdirectory("xdit-binning-alpha").FullName;
        try
        {
            PixArtArchitecture.Get("pixart-alpha").Reduced(factor: 16, layers: 1).WriteRandomFolder(folder, seed: 6, DType.F32);
            using var context = Contexts.Cpu();
            using var pipeline = PixArtPipeline.Load(folder, context);
            var request = new GenerationRequest { Prompts = ["a field"], Height = 100, Width = 4000, Steps = 1, GuidanceScale = 1, MaxSequenceLength = 16, LatentsOnly = true };
            Assert.That(pipeline.ResolutionBin(request), Is.EqualTo(new AspectRatioBin("0.25", 512, 2048)));
            Assert.That(pipeline.Generate(request).LatentShape, Is.EqualTo(new long[] { 1, 4, 64, 256 }));
            var error = Assert.Throws<XDitException>(() => pipeline.Generate(request with { UseResolutionBinning = false }))!;
            Assert.That(error.Message, Does.Contain("multiples of 16").And.Contain("100x4000"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
