namespace XDit.Pipelines;

/// <summary>
/// PixArt's resolution binning, as diffusers' PixArt pipelines do it with <c>use_resolution_binning</c>:
/// a request is generated at the bin whose ratio key is closest to its height / width, in the table that
/// matches the transformer's training size, and the decoded images are resized back afterwards. The
/// tables are diffusers' <c>ASPECT_RATIO_*_BIN</c> dictionaries, entry for entry and in their order (the
/// order decides ties).
/// </summary>
public static class AspectRatioBins
{
    /// <summary>diffusers' <c>ASPECT_RATIO_256_BIN</c>: transformers with <c>sample_size</c> 32 (256² training images).</summary>
    public static IReadOnlyList<AspectRatioBin> Bins256 { get; } =
    [
        Bin("0.25", 128, 512), Bin("0.28", 128, 464), Bin("0.32", 144, 448), Bin("0.33", 144, 432),
        Bin("0.35", 144, 416), Bin("0.4", 160, 400), Bin("0.42", 160, 384), Bin("0.48", 176, 368),
        Bin("0.5", 176, 352), Bin("0.52", 176, 336), Bin("0.57", 192, 336), Bin("0.6", 192, 320),
        Bin("0.68", 208, 304), Bin("0.72", 208, 288), Bin("0.78", 224, 288), Bin("0.82", 224, 272),
        Bin("0.88", 240, 272), Bin("0.94", 240, 256), Bin("1.0", 256, 256), Bin("1.07", 256, 240),
        Bin("1.13", 272, 240), Bin("1.21", 272, 224), Bin("1.29", 288, 224), Bin("1.38", 288, 208),
        Bin("1.46", 304, 208), Bin("1.67", 320, 192), Bin("1.75", 336, 192), Bin("2.0", 352, 176),
        Bin("2.09", 368, 176), Bin("2.4", 384, 160), Bin("2.5", 400, 160), Bin("3.0", 432, 144),
        Bin("4.0", 512, 128),
    ];

    /// <summary>diffusers' <c>ASPECT_RATIO_512_BIN</c>: transformers with <c>sample_size</c> 64 (PixArt-XL-2-512x512).</summary>
    public static IReadOnlyList<AspectRatioBin> Bins512 { get; } =
    [
        Bin("0.25", 256, 1024), Bin("0.28", 256, 928), Bin("0.32", 288, 896), Bin("0.33", 288, 864),
        Bin("0.35", 288, 832), Bin("0.4", 320, 800), Bin("0.42", 320, 768), Bin("0.48", 352, 736),
        Bin("0.5", 352, 704), Bin("0.52", 352, 672), Bin("0.57", 384, 672), Bin("0.6", 384, 640),
        Bin("0.68", 416, 608), Bin("0.72", 416, 576), Bin("0.78", 448, 576), Bin("0.82", 448, 544),
        Bin("0.88", 480, 544), Bin("0.94", 480, 512), Bin("1.0", 512, 512), Bin("1.07", 512, 480),
        Bin("1.13", 544, 480), Bin("1.21", 544, 448), Bin("1.29", 576, 448), Bin("1.38", 576, 416),
        Bin("1.46", 608, 416), Bin("1.67", 640, 384), Bin("1.75", 672, 384), Bin("2.0", 704, 352),
        Bin("2.09", 736, 352), Bin("2.4", 768, 320), Bin("2.5", 800, 320), Bin("3.0", 864, 288),
        Bin("4.0", 1024, 256),
    ];

    /// <summary>diffusers' <c>ASPECT_RATIO_1024_BIN</c>: transformers with <c>sample_size</c> 128 (PixArt-XL-2-1024-MS, PixArt-Sigma-XL-2-1024-MS).</summary>
    public static IReadOnlyList<AspectRatioBin> Bins1024 { get; } =
    [
        Bin("0.25", 512, 2048), Bin("0.28", 512, 1856), Bin("0.32", 576, 1792), Bin("0.33", 576, 1728),
        Bin("0.35", 576, 1664), Bin("0.4", 640, 1600), Bin("0.42", 640, 1536), Bin("0.48", 704, 1472),
        Bin("0.5", 704, 1408), Bin("0.52", 704, 1344), Bin("0.57", 768, 1344), Bin("0.6", 768, 1280),
        Bin("0.68", 832, 1216), Bin("0.72", 832, 1152), Bin("0.78", 896, 1152), Bin("0.82", 896, 1088),
        Bin("0.88", 960, 1088), Bin("0.94", 960, 1024), Bin("1.0", 1024, 1024), Bin("1.07", 1024, 960),
        Bin("1.13", 1088, 960), Bin("1.21", 1088, 896), Bin("1.29", 1152, 896), Bin("1.38", 1152, 832),
        Bin("1.46", 1216, 832), Bin("1.67", 1280, 768), Bin("1.75", 1344, 768), Bin("2.0", 1408, 704),
        Bin("2.09", 1472, 704), Bin("2.4", 1536, 640), Bin("2.5", 1600, 640), Bin("3.0", 1728, 576),
        Bin("4.0", 2048, 512),
    ];

    /// <summary>diffusers' <c>ASPECT_RATIO_2048_BIN</c> (PixArt-Σ only): transformers with <c>sample_size</c> 256 (PixArt-Sigma-XL-2-2K-MS).</summary>
    public static IReadOnlyList<AspectRatioBin> Bins2048 { get; } =
    [
        Bin("0.25", 1024, 4096), Bin("0.26", 1024, 3968), Bin("0.27", 1024, 3840), Bin("0.28", 1024, 3712),
        Bin("0.32", 1152, 3584), Bin("0.33", 1152, 3456), Bin("0.35", 1152, 3328), Bin("0.4", 1280, 3200),
        Bin("0.42", 1280, 3072), Bin("0.48", 1408, 2944), Bin("0.5", 1408, 2816), Bin("0.52", 1408, 2688),
        Bin("0.57", 1536, 2688), Bin("0.6", 1536, 2560), Bin("0.68", 1664, 2432), Bin("0.72", 1664, 2304),
        Bin("0.78", 1792, 2304), Bin("0.82", 1792, 2176), Bin("0.88", 1920, 2176), Bin("0.94", 1920, 2048),
        Bin("1.0", 2048, 2048), Bin("1.07", 2048, 1920), Bin("1.13", 2176, 1920), Bin("1.21", 2176, 1792),
        Bin("1.29", 2304, 1792), Bin("1.38", 2304, 1664), Bin("1.46", 2432, 1664), Bin("1.67", 2560, 1536),
        Bin("1.75", 2688, 1536), Bin("2.0", 2816, 1408), Bin("2.09", 2944, 1408), Bin("2.4", 3072, 1280),
        Bin("2.5", 3200, 1280), Bin("2.89", 3328, 1152), Bin("3.0", 3456, 1152), Bin("3.11", 3584, 1152),
        Bin("3.62", 3712, 1024), Bin("3.75", 3840, 1024), Bin("3.88", 3968, 1024), Bin("4.0", 4096, 1024),
    ];

    /// <summary>The table diffusers picks for a transformer's <c>sample_size</c> (latent pixels): 32 → 256,
    /// 64 → 512, 128 → 1024 and, for PixArt-Σ only, 256 → 2048; null for any other size (diffusers raises
    /// "Invalid sample size" there; the engine generates at the requested size instead).</summary>
    public static IReadOnlyList<AspectRatioBin>? ForSampleSize(int sampleSize, bool sigma) => sampleSize switch
    {
        32 => Bins256,
        64 => Bins512,
        128 => Bins1024,
        256 when sigma => Bins2048,
        _ => null,
    };

    /// <summary>The bin whose ratio key is closest to <paramref name="height"/> / <paramref name="width"/>, as
    /// diffusers' <c>classify_height_width_bin</c>: the distance is |float(key) − height / width| in doubles,
    /// and on equal distances the earlier entry of the table wins (Python's <c>min</c>), so a 768×1024
    /// request, midway between "0.72" and "0.78", gets the "0.72" bin.</summary>
    public static AspectRatioBin Classify(int height, int width, IReadOnlyList<AspectRatioBin> table)
    {
        if (height <= 0 || width <= 0)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"height and width must be positive, got {height}x{width}");
        if (table.Count == 0) throw new XDitException(Native.XditStatus.InvalidArgument, "the aspect-ratio table is empty");
        var ratio = (double)height / width;
        var best = table[0];
        var bestDistance = Math.Abs(best.RatioValue - ratio);
        for (int i = 1; i < table.Count; i++)
        {
            var distance = Math.Abs(table[i].RatioValue - ratio);
            if (distance < bestDistance) (best, bestDistance) = (table[i], distance);
        }
        return best;
    }

    static AspectRatioBin Bin(string ratio, int height, int width) => new(ratio, height, width);
}
