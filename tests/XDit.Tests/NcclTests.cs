using XDit.Native;
using XDit.Parallel;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The NCCL communicator: what it refuses anywhere, and on a machine with a GPU and NCCL (the GPU kit's
/// machine, where PyTorch ships libnccl) a world of one rank running every collective.</summary>
[TestFixture]
public class NcclTests
{
    /// <summary>Either NCCL loads and reports a 2.x version, or the error names the library and how to point at it.</summary>
    [Test]
    public void VersionOrAnErrorThatSaysWhatToInstall()
    {
        try
        {
            Assert.That(NcclCommunicator.Version, Is.InRange(2_07_00, 3_00_00 - 1));
        }
        catch (XDitException e)
        {
            Assert.That(e.Status, Is.EqualTo(XditStatus.Unavailable));
            Assert.That(e.Message, Does.Contain("libnccl.so.2").And.Contain("XDIT_NCCL_LIB"));
        }
    }

    [Test]
    public void HostMemoryIsRefusedBeforeNcclIsTouched()
    {
        using var cpu = Contexts.Cpu(threads: 1);
        var error = InProcessWorld.Run(1, bootstrap => Assert.Throws<XDitException>(() => NcclCommunicator.Create(bootstrap, cpu))!)[0];
        Assert.That(error.Status, Is.EqualTo(XditStatus.Unsupported));
        Assert.That(error.Message, Does.Contain("CUDA context"));
    }

    /// <summary>Skips (not passes) the test on machines without a GPU or without NCCL.</summary>
    static void RequireGpuAndNccl()
    {
        Contexts.CudaOrIgnore().Dispose();
        try
        {
            _ = NcclCommunicator.Version;
        }
        catch (XDitException e) when (e.Status == XditStatus.Unavailable)
        {
            Assert.Ignore($"no NCCL on this machine: {e.Message}");
        }
    }

    [Test]
    [Category("GPU")]
    public void AWorldOfOneRankRunsEveryCollective()
    {
        RequireGpuAndNccl();
        var outcomes = InProcessWorld.Run(1, bootstrap =>
        {
            using var context = DeviceContext.Create(Device.Cuda(0));
            using var nccl = NcclCommunicator.Create(bootstrap, context);
            return CollectiveCheck.Run(nccl, context);
        }, TimeSpan.FromSeconds(60));
        Assert.That(outcomes[0].Where(o => !o.Passed).Select(o => $"{o.Collective}: {o.Detail}"), Is.Empty);
    }

    /// <summary>A tensor of another context would break the stream order the communicator relies on.</summary>
    [Test]
    [Category("GPU")]
    public void TensorsOfAnotherContextAreRefused()
    {
        RequireGpuAndNccl();
        InProcessWorld.Run(1, bootstrap =>
        {
            using var context = DeviceContext.Create(Device.Cuda(0));
            using var other = DeviceContext.Create(Device.Cuda(0));
            using var nccl = NcclCommunicator.Create(bootstrap, context);
            using var scope = new TensorScope();
            var data = Tensor.Zeros(other, DType.F32, 4);
            Assert.That(Assert.Throws<XDitException>(() => nccl.Broadcast(data, 0))!.Message, Does.Contain("another context"));
            return 0;
        });
    }
}
