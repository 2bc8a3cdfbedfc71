using System.Globalization;

namespace XDit.Parallel;

/// <summary>
/// The link between the devices of a mesh, for <see cref="ScalingModel"/>: bandwidth per direction and a
/// fixed cost per collective call. The named links are typical effective figures, not a particular
/// machine's: NVLink 4 on an H100 SXM board (450 GB/s each way, ~5 µs per NCCL call), PCIe 4.0 x16
/// (~25 GB/s, ~10 µs) and 100 Gb Ethernet (~12 GB/s, ~25 µs).
/// </summary>
public sealed record LinkModel(string Name, double BytesPerSecond, TimeSpan LatencyPerCall)
{
    public static LinkModel NvLink { get; } = new("NVLink 4", 450e9, TimeSpan.FromMicroseconds(5));
    public static LinkModel Pcie { get; } = new("PCIe 4.0 x16", 25e9, TimeSpan.FromMicroseconds(10));
    public static LinkModel Ethernet { get; } = new("100 Gb Ethernet", 12e9, TimeSpan.FromMicroseconds(25));

    /// <summary><c>nvlink</c>, <c>pcie</c>, <c>ethernet</c>, or a bandwidth in GB/s (then 10 µs per call).</summary>
    public static LinkModel Parse(string text) => text.ToLowerInvariant() switch
    {
        "nvlink" => NvLink,
        "pcie" => Pcie,
        "ethernet" => Ethernet,
        _ when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var gigabytes) && gigabytes > 0 && double.IsFinite(gigabytes) =>
            new LinkModel($"{gigabytes.ToString(CultureInfo.InvariantCulture)} GB/s", gigabytes * 1e9, TimeSpan.FromMicroseconds(10)),
        _ => throw new ArgumentException($"a link is nvlink, pcie, ethernet or a bandwidth in GB/s, not '{text}'"),
    };

    /// <summary>The time a rank spends sending <paramref name="volume"/> over this link.</summary>
    public TimeSpan Time(CollectiveVolume volume) =>
        TimeSpan.FromSeconds(volume.BytesSent / BytesPerSecond + volume.Calls * LatencyPerCall.TotalSeconds);
}
