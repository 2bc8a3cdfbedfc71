using XDit.Parallel;

namespace XDit.Tests;

/// <summary>The scaling model against predictions worked out by hand from DESIGN.md §5b's terms.</summary>
public class ScalingModelTests
{
    static readonly Dictionary<string, CollectiveVolume> Silent = [];

    [Test]
    public void SequenceParallelSplitsTheStepAndPaysItsCommunication()
    {
        // Ulysses 2 on a 100 GB/s link (10 µs per call): half the step, plus 32 all-to-alls of 4 MiB in all.
        var link = LinkModel.Parse("100");
        var volume = new Dictionary<string, CollectiveVolume> { ["all_to_all"] = new(32, 4L << 20) };
        var predicted = ScalingModel.StepTime(new ParallelConfig { UlyssesDegree = 2 }, TimeSpan.FromMilliseconds(1000), volume, link, steps: 20, tokenRows: 64);
        Assert.That(predicted.TotalMilliseconds, Is.EqualTo(500 + (4 << 20) / 100e9 * 1000 + 32 * 0.010).Within(1e-3), "TimeSpan keeps 100 ns ticks");
    }

    [Test]
    public void DataParallelAndCfgSplitTheBatch()
    {
        var predicted = ScalingModel.StepTime(new ParallelConfig { DataParallelDegree = 2, UseCfgParallel = true, RingDegree = 2 },
            TimeSpan.FromMilliseconds(800), Silent, LinkModel.NvLink, steps: 4, tokenRows: 16);
        Assert.That(predicted.TotalMilliseconds, Is.EqualTo(100).Within(1e-9));
    }

    /// <summary>2 stages, 2 bands, 4 steps, 1 warmup: the whole item takes two ticks of half a step (one per
    /// stage), then the bands stream — a band on a stage is a quarter step — with a one-tick wait for the
    /// warmup's latent and one tick to drain: 2 × ½ + 7 × ¼ = 2.75 steps' work over 4 steps.</summary>
    [Test]
    public void PipeFusionFollowsItsSchedule()
    {
        var mesh = new ParallelConfig { PipeFusionDegree = 2, NumPipelinePatch = 2, WarmupSteps = 1 };
        var predicted = ScalingModel.StepTime(mesh, TimeSpan.FromMilliseconds(1000), Silent, LinkModel.NvLink, steps: 4, tokenRows: 16);
        Assert.That(predicted.TotalMilliseconds, Is.EqualTo(2750.0 / 4).Within(1e-9));
        // All warmup: the stages take turns, so no gain over one device.
        var synchronous = ScalingModel.StepTime(mesh with { WarmupSteps = 4 }, TimeSpan.FromMilliseconds(1000), Silent, LinkModel.NvLink, 4, 16);
        Assert.That(synchronous.TotalMilliseconds, Is.EqualTo(1000).Within(1e-9));
    }

    [Test]
    public void LinksParseByNameOrBandwidth()
    {
        Assert.That(LinkModel.Parse("NVLink"), Is.EqualTo(LinkModel.NvLink));
        Assert.That(LinkModel.Parse("2.5").BytesPerSecond, Is.EqualTo(2.5e9));
        Assert.That(() => LinkModel.Parse("fast"), Throws.ArgumentException.With.Message.Contains("nvlink, pcie, ethernet"));
        Assert.That(() => LinkModel.Parse("-3"), Throws.ArgumentException);
    }
}
