namespace XDit.Imaging;

/// <summary>
/// How diffusers' <c>resize_and_crop_tensor</c> brings an image to a target size: scale it by
/// max(target height / height, target width / width) so it covers the target, truncating the scaled
/// size with Python's <c>int()</c>, then take the centered window (offsets floor((resized − target) / 2)).
/// </summary>
/// <param name="ResizedHeight">The height the whole image is scaled to.</param>
/// <param name="ResizedWidth">The width the whole image is scaled to.</param>
/// <param name="Top">The first row of the resized image that is kept.</param>
/// <param name="Left">The first column of the resized image that is kept.</param>
public readonly record struct CoverCrop(int ResizedHeight, int ResizedWidth, int Top, int Left)
{
    /// <summary>The resize and window that take a <paramref name="height"/>×<paramref name="width"/> image
    /// to <paramref name="targetHeight"/>×<paramref name="targetWidth"/>.</summary>
    /// <remarks>One deliberate difference: the scaled size is never smaller than the target. diffusers
    /// computes it in doubles, and for the side that sets the scale, size × (target / size) can land just
    /// below the target (832 × (960 / 832) = 959.999…, a 960×1280 request on PixArt 1024); <c>int()</c> then
    /// gives 959, the crop offset becomes −1, and Python's slicing returns a single row. Here that side is
    /// the target itself, which is what the arithmetic means.</remarks>
    public static CoverCrop For(int height, int width, int targetHeight, int targetWidth)
    {
        if (height <= 0 || width <= 0 || targetHeight <= 0 || targetWidth <= 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"image and target sizes must be positive, got {height}x{width} to {targetHeight}x{targetWidth}");
        if (height == targetHeight && width == targetWidth) return new CoverCrop(height, width, 0, 0);
        var scale = Math.Max((double)targetHeight / height, (double)targetWidth / width);
        var resizedHeight = Math.Max((int)(height * scale), targetHeight);
        var resizedWidth = Math.Max((int)(width * scale), targetWidth);
        return new CoverCrop(resizedHeight, resizedWidth, (resizedHeight - targetHeight) / 2, (resizedWidth - targetWidth) / 2);
    }
}
