namespace XDit.Models.Vae;

/// <summary>
/// diffusers' <c>enable_tiling()</c> settings for <see cref="AutoencoderKL"/>: an image is encoded, and a
/// latent decoded, in square tiles of <see cref="SampleTileSize"/> pixels (SampleTileSize / f latents) so
/// that the activations alive at once are those of one tile, however large the image. Tiles start every
/// (1 − overlap)·tile; each output tile is blended linearly with its upper and left neighbours over
/// overlap·tile rows and columns, and its first (1 − overlap)·tile rows and columns are kept. Every tile
/// runs the GroupNorms and the mid-block attention over its own pixels only, so the result is close to,
/// not equal to, the one-piece pass — in diffusers too; the blend hides the seams.
/// </summary>
public sealed record VaeTiling
{
    public VaeTiling(int sampleTileSize, double overlapFactor = 0.25)
    {
        if (sampleTileSize < 1)
            throw new XDitException(Native.XditStatus.InvalidArgument, $"the VAE tile size must be at least 1 pixel, got {sampleTileSize}");
        if (!(overlapFactor >= 0 && overlapFactor < 1))
            throw new XDitException(Native.XditStatus.InvalidArgument, $"the VAE tile overlap factor must be in [0, 1), got {overlapFactor}");
        SampleTileSize = sampleTileSize;
        OverlapFactor = overlapFactor;
    }

    /// <summary>diffusers' <c>tile_sample_min_size</c>: the side of a tile in image pixels.</summary>
    public int SampleTileSize { get; }

    /// <summary>diffusers' <c>tile_overlap_factor</c>: the fraction of a tile it shares with each neighbour.</summary>
    public double OverlapFactor { get; }

    /// <summary>What diffusers' <c>enable_tiling()</c> uses: tiles of the config's <c>sample_size</c>, overlap 0.25.</summary>
    public static VaeTiling For(AutoencoderKLConfig config) => new(config.SampleSize);

    /// <summary>diffusers' <c>tiled_decode</c> numbers: latent tiles every int(latent tile·(1 − overlap)),
    /// blended over int(tile·overlap) pixels, of which the first tile − blend are kept.</summary>
    internal TilePlan DecodePlan(int scaleFactor)
    {
        var latentTile = LatentTileSize(scaleFactor);
        var stride = (int)(latentTile * (1 - OverlapFactor));
        var blend = (int)(SampleTileSize * OverlapFactor);
        var keep = SampleTileSize - blend;
        return LinedUp(new TilePlan(latentTile, stride, blend, keep), keep == (long)stride * scaleFactor, latentTile);
    }

    /// <summary>diffusers' <c>tiled_encode</c> numbers: image tiles every int(tile·(1 − overlap)) pixels,
    /// blended over int(latent tile·overlap) latents, of which the first latent tile − blend are kept.</summary>
    internal TilePlan EncodePlan(int scaleFactor)
    {
        var latentTile = LatentTileSize(scaleFactor);
        var stride = (int)(SampleTileSize * (1 - OverlapFactor));
        var blend = (int)(latentTile * OverlapFactor);
        var keep = latentTile - blend;
        return LinedUp(new TilePlan(SampleTileSize, stride, blend, keep), stride == (long)keep * scaleFactor, latentTile);
    }

    /// <summary>Throws unless these settings suit a VAE with this scale factor (both directions).</summary>
    internal void Validate(int scaleFactor)
    {
        DecodePlan(scaleFactor);
        EncodePlan(scaleFactor);
    }

    int LatentTileSize(int scaleFactor)
    {
        if (SampleTileSize % scaleFactor != 0)
            throw new XDitException(Native.XditStatus.InvalidArgument,
                $"the VAE tile size ({SampleTileSize} pixels) must be a multiple of the VAE's scale factor {scaleFactor}");
        return SampleTileSize / scaleFactor;
    }

    /// <summary>diffusers keeps the first tile − blend rows and columns of every tile; the stitched result
    /// has the one-piece size only when they span exactly one stride (scaled to the output), which holds
    /// when overlap × latent tile is a whole number. Otherwise diffusers returns an image of the wrong size;
    /// refuse instead.</summary>
    TilePlan LinedUp(TilePlan plan, bool keptSpansStride, int latentTile) => keptSpansStride ? plan
        : throw new XDitException(Native.XditStatus.InvalidArgument,
            $"VAE tiles of {SampleTileSize} pixels ({latentTile} latents) with overlap {OverlapFactor} do not line up: " +
            "overlap × latent tile size must be a whole number");
}
