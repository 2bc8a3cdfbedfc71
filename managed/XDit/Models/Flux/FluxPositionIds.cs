namespace XDit.Models.Flux;

/// <summary>
/// The position ids <c>FluxPipeline</c> gives the transformer, row-major [tokens, 3] as
/// <see cref="FluxTransformer2DModel.Forward"/> takes them: image token (i, j) of the packed grid is
/// [0, i, j] (<c>_prepare_latent_image_ids</c>), every text token [0, 0, 0]. Text and image tokens thus
/// share positions along the first axis; only the image's rows and columns rotate.
/// </summary>
public static class FluxPositionIds
{
    /// <summary>The ids of a packed grid of <paramref name="height"/> × <paramref name="width"/> tokens
    /// (half the latent's height and width), row-major over the grid as <see cref="Ops.Layout.FluxPack"/>
    /// orders the tokens.</summary>
    public static float[] Image(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        var ids = new float[height * width * 3];
        for (int i = 0; i < height; i++)
        for (int j = 0; j < width; j++)
        {
            var row = (i * width + j) * 3;
            ids[row + 1] = i;
            ids[row + 2] = j;
        }
        return ids;
    }

    /// <summary>The ids of <paramref name="tokens"/> text tokens: all zero.</summary>
    public static float[] Text(int tokens)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(tokens);
        return new float[tokens * 3];
    }
}
