using XDit.Tensors;

namespace XDit.Imaging;

/// <summary>
/// Bilinear resizing of decoded images [N, C, H, W] as PyTorch's
/// <c>F.interpolate(mode="bilinear", align_corners=False)</c> without antialiasing computes it, and
/// diffusers' <c>resize_and_crop_tensor</c> built on it (PixArt's resolution binning).
/// </summary>
/// <remarks>
/// The arithmetic runs on the host, in fp32 like PyTorch for f32 images: decoded images go to the host
/// right after this anyway (<see cref="ImageConversion.ToRgbBytes"/>), each output pixel costs four
/// multiply-adds, and there is no interpolation kernel in the native library; composing it from existing
/// ops (a GEMM against interpolation matrices per axis) would spend a full row of multiply-adds on every
/// output pixel to use two of them. Results come back as f32 tensors on the images' context.
/// </remarks>
public static class ImageResize
{
    /// <summary><c>F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)</c>.</summary>
    public static Tensor Bilinear(Tensor images, int height, int width) =>
        Resize(images, new CoverCrop(height, width, 0, 0), height, width);

    /// <summary>diffusers' <c>resize_and_crop_tensor(images, width, height)</c>: scaled to cover
    /// <paramref name="height"/>×<paramref name="width"/>, then center-cropped to it (see
    /// <see cref="CoverCrop"/>); images already of that size come back as an f32 copy.</summary>
    public static Tensor ResizeAndCrop(Tensor images, int height, int width)
    {
        CheckImages(images);
        return Resize(images, CoverCrop.For((int)images.Size(2), (int)images.Size(3), height, width), height, width);
    }

    /// <summary>The <paramref name="height"/>×<paramref name="width"/> window at (<c>Top</c>, <c>Left</c>) of the
    /// images resized to <c>ResizedHeight</c>×<c>ResizedWidth</c>: only the kept pixels are computed.</summary>
    static Tensor Resize(Tensor images, CoverCrop plan, int height, int width)
    {
        CheckImages(images);
        if (plan.ResizedHeight <= 0 || plan.ResizedWidth <= 0 || height <= 0 || width <= 0
            || plan.Top < 0 || plan.Left < 0 || plan.Top + height > plan.ResizedHeight || plan.Left + width > plan.ResizedWidth)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"cannot take a {height}x{width} window at ({plan.Top}, {plan.Left}) of {images} resized to {plan.ResizedHeight}x{plan.ResizedWidth}");
        int planes = checked((int)(images.Size(0) * images.Size(1))), inHeight = (int)images.Size(2), inWidth = (int)images.Size(3);
        float[] source;
        using (var f32 = images.To(DType.F32)) source = f32.ToArray<float>();
        var rows = AxisWeights.For(inHeight, plan.ResizedHeight, plan.Top, height);
        var columns = AxisWeights.For(inWidth, plan.ResizedWidth, plan.Left, width);
        var result = new float[(long)planes * height * width];
        for (int p = 0; p < planes; p++)
        {
            var plane = source.AsSpan(p * inHeight * inWidth, inHeight * inWidth);
            var output = result.AsSpan(p * height * width, height * width);
            for (int y = 0; y < height; y++)
            {
                var row0 = plane.Slice(rows.Index0[y] * inWidth, inWidth);
                var row1 = plane.Slice(rows.Index1[y] * inWidth, inWidth);
                float h0 = rows.Weight0[y], h1 = rows.Weight1[y];
                for (int x = 0; x < width; x++)
                {
                    int x0 = columns.Index0[x], x1 = columns.Index1[x];
                    float w0 = columns.Weight0[x], w1 = columns.Weight1[x];
                    output[y * width + x] = (row0[x0] * w0 + row0[x1] * w1) * h0 + (row1[x0] * w0 + row1[x1] * w1) * h1;
                }
            }
        }
        return Tensor.FromArray(images.Context, result, images.Size(0), images.Size(1), height, width);
    }

    static void CheckImages(Tensor images)
    {
        if (images.Rank != 4 || !images.DType.IsFloatingPoint() || images.NumElements == 0)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"expected non-empty float images [N, C, H, W], got {images}");
    }

    /// <summary>For each kept output index along one axis, the two source indices and their weights, by
    /// PyTorch's <c>compute_source_index_and_lambda</c> in fp32: the scale is input / output size, the
    /// source coordinate scale·(i + ½) − ½ clamped at 0, the second neighbour the first one's successor
    /// except at the last index; equal sizes copy.</summary>
    sealed record AxisWeights(int[] Index0, int[] Index1, float[] Weight0, float[] Weight1)
    {
        public static AxisWeights For(int inputSize, int outputSize, int start, int count)
        {
            var weights = new AxisWeights(new int[count], new int[count], new float[count], new float[count]);
            var scale = (float)inputSize / outputSize;
            for (int k = 0; k < count; k++)
            {
                var i = start + k;
                if (inputSize == outputSize)
                {
                    (weights.Index0[k], weights.Index1[k], weights.Weight0[k], weights.Weight1[k]) = (i, i, 1f, 0f);
                    continue;
                }
                var coordinate = Math.Max(scale * (i + 0.5f) - 0.5f, 0f);
                var index = Math.Min((int)MathF.Floor(coordinate), inputSize - 1);
                var lambda = Math.Clamp(coordinate - index, 0f, 1f);
                weights.Index0[k] = index;
                weights.Index1[k] = index + (index < inputSize - 1 ? 1 : 0);
                weights.Weight0[k] = 1f - lambda;
                weights.Weight1[k] = lambda;
            }
            return weights;
        }
    }
}
