using XDit.Ops;
using XDit.Tensors;

namespace XDit.Imaging;

/// <summary>Decoded images to bytes as diffusers' <c>VaeImageProcessor.postprocess</c> does:
/// <c>(x / 2 + 0.5).clamp(0, 1)</c>, then <c>round(· 255)</c> with NumPy's round-half-to-even.</summary>
public static class ImageConversion
{
    /// <summary>images [N, 3, H, W] in [−1, 1] → one RGB byte array (row-major, interleaved) per image.</summary>
    public static byte[][] ToRgbBytes(Tensor images)
    {
        if (images.Rank != 4 || images.Size(1) != 3)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"expected RGB images [N, 3, H, W], got {images}");
        using var scope = new TensorScope();
        var unit = Elementwise.Clamp(Elementwise.Affine(images.To(DType.F32), 0.5, 0.5), 0, 1);
        var values = unit.ToArray<float>();
        int n = (int)images.Size(0), h = (int)images.Size(2), w = (int)images.Size(3), plane = h * w;
        var result = new byte[n][];
        for (int i = 0; i < n; i++)
        {
            var rgb = new byte[plane * 3];
            for (int p = 0; p < plane; p++)
                for (int c = 0; c < 3; c++)
                    rgb[p * 3 + c] = (byte)MathF.Round(values[(i * 3 + c) * plane + p] * 255f, MidpointRounding.ToEven);
            result[i] = rgb;
        }
        return result;
    }
}
