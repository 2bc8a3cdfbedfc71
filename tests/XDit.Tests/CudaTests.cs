using XDit.Ops;
using XDit.Tensors;

namespace XDit.Tests;

/// <summary>The CUDA backend against the CPU backend and the fp64 references. Skipped (not passed)
/// without a CUDA device.</summary>
[TestFixture]
[Category("GPU")]
public class CudaTests
{
    [Test]
    public void GemmMatchesFp64()
    {
        using var cuda = Contexts.CudaOrIgnore();
        GemmTests.Check(cuda, 3, 37, 29, 61, sharedWeight: true, withBias: true, Epilogue.None, null, seed: 1);
        GemmTests.Check(cuda, 4, 13, 9, 300, sharedWeight: false, withBias: false, Epilogue.None, null, seed: 2);
        GemmTests.Check(cuda, 2, 23, 41, 19, sharedWeight: true, withBias: true, Epilogue.GeluTanh, Reference.GeluTanh, seed: 3);
        GemmTests.Check(cuda, 2, 23, 41, 19, sharedWeight: true, withBias: true, Epilogue.GeluErf, Reference.GeluErf, seed: 4);
        GemmTests.Check(cuda, 2, 23, 41, 19, sharedWeight: true, withBias: false, Epilogue.Silu, Reference.Silu, seed: 5);
    }

    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void HalfGemmMatchesTheCpu(DType dtype)
    {
        using var cuda = Contexts.CudaOrIgnore();
        using var cpu = Contexts.Cpu();
        var random = new Random(8);
        const int m = 64, n = 96, k = 128;
        var a = Reference.RandomFloats(random, m * k);
        var w = Reference.RandomFloats(random, n * k);
        var b = Reference.RandomFloats(random, n);
        float[] Run(DeviceContext c)
        {
            using var scope = new TensorScope();
            return MatMul.Gemm(Tensor.FromArray(c, a, m, k).To(dtype), Tensor.FromArray(c, w, n, k).To(dtype),
                Tensor.FromArray(c, b, n).To(dtype), Epilogue.GeluTanh).To(DType.F32).ToArray<float>();
        }
        Assert.That(Reference.RelativeL2(Run(cuda), Run(cpu)), Is.LessThan(1e-2));
    }

    [Test]
    public void CastsAreBitIdenticalToTheCpu()
    {
        using var cuda = Contexts.CudaOrIgnore();
        CastTests.CheckWidening(cuda);
        var random = new Random(4);
        var inputs = Enumerable.Range(0, 100_000).Select(_ => BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32)))
            .Where(f => !float.IsNaN(f)).ToArray();
        using var cpu = Contexts.Cpu();
        foreach (var dtype in new[] { DType.F16, DType.BF16 })
        {
            using var scope = new TensorScope();
            var onCuda = Tensor.FromArray(cuda, inputs, inputs.Length).To(dtype).To(DType.F32).ToArray<float>();
            var onCpu = Tensor.FromArray(cpu, inputs, inputs.Length).To(dtype).To(DType.F32).ToArray<float>();
            Assert.That(onCuda, Is.EqualTo(onCpu), dtype.ToString());
        }
    }

    [Test]
    public void StridedElementwiseMatchesTheCpu()
    {
        using var cuda = Contexts.CudaOrIgnore();
        using var cpu = Contexts.Cpu();
        var data = Reference.RandomFloats(new Random(6), 3 * 4 * 5);
        float[] Run(DeviceContext c)
        {
            using var scope = new TensorScope();
            var t = Tensor.FromArray(c, data, 3, 4, 5).Permute(2, 0, 1);
            var sum = Elementwise.Add(t, Tensor.FromArray(c, new[] { 1f, 2f, 3f, 4f }, 4));
            var output = Tensor.Full(c, DType.F32, double.NaN, 5, 3, 4);
            Elementwise.Mul(sum, t, output);
            return output.ToArray<float>();
        }
        Assert.That(Run(cuda), Is.EqualTo(Run(cpu)));
    }

    /// <summary>Two contexts of one device have their own streams: a copy between them must wait for the
    /// source's queued kernels, and the source's next kernel must wait for the copy.</summary>
    [Test]
    public void CopyBetweenContextsFollowsBothStreams()
    {
        using var source = Contexts.CudaOrIgnore();
        using var target = DeviceContext.Create(Device.Cuda(0));
        using var scope = new TensorScope();
        const int n = 1 << 24;
        var data = Tensor.Full(source, DType.F32, 0, n);
        for (int i = 0; i < 16; i++) Elementwise.Affine(data, 1, 1, data);
        var copy = Tensor.Empty(target, DType.BF16, n);
        Elementwise.Copy(data, copy);
        Elementwise.Fill(data, -1);
        Assert.That(copy.To(DType.F32).ToArray<float>().Distinct(), Is.EqualTo(new[] { 16f }));
    }

    /// <summary>Every collective on in-process ranks that share the GPU, each with its own context.</summary>
    [TestCase(2)]
    [TestCase(4)]
    public void CollectivesOnRanksSharingTheDevice(int size)
    {
        Contexts.CudaOrIgnore().Dispose();
        var outcomes = Parallel.InProcessWorld.Run(size, comm =>
        {
            using var context = DeviceContext.Create(Device.Cuda(0));
            return Parallel.CollectiveCheck.Run(comm, context);
        }, TimeSpan.FromSeconds(60));
        foreach (var rank in outcomes)
            Assert.That(rank.Where(o => !o.Passed).Select(o => $"{o.Collective}: {o.Detail}"), Is.Empty);
    }

    /// <summary>A context wraps another context's memory on the same device (shared weights), and nothing else.</summary>
    [Test]
    public void AContextWrapsOnlyItsDevicesMemory()
    {
        using var owner = Contexts.CudaOrIgnore();
        using var reader = DeviceContext.Create(Device.Cuda(0));
        var original = Tensor.FromArray(owner, new[] { 1f, 2f, 3f, 4f, 5f, 6f }, 2, 3);
        var wrapped = Tensor.Wrap(reader, original.DataAddress, DType.F32, [2, 3], original);
        using (var scope = new TensorScope())
            Assert.That(Elementwise.Affine(wrapped, 2, 0).ToArray<float>(), Is.EqualTo(new[] { 2f, 4f, 6f, 8f, 10f, 12f }));
        wrapped.Dispose();
        Assert.That(original.IsDisposed, Is.True, "the owner goes with the wrapping tensor");
        var host = new float[4];
        var handle = System.Runtime.InteropServices.GCHandle.Alloc(host, System.Runtime.InteropServices.GCHandleType.Pinned);
        try
        {
            var error = Assert.Throws<XDitException>(() => Tensor.Wrap(reader, handle.AddrOfPinnedObject(), DType.F32, [4], null))!;
            Assert.That(error.Status, Is.EqualTo(Native.XditStatus.Unsupported));
        }
        finally
        {
            handle.Free();
        }
    }

    /// <summary>In-process ranks sharing the GPU hold one copy of the weights between them.</summary>
    [Test]
    public void RanksSharingTheGpuHoldOneCopyOfTheWeights()
    {
        Contexts.CudaOrIgnore().Dispose();
        var folder = Directory.CreateTempSubdirectory("xdit-cuda-shared").FullName;
        try
        {
            Pipelines.Architectures.WriteRandomFolder("tiny-sd3", folder, seed: 3, DType.F32);
            ulong alone;
            using (var context = DeviceContext.Create(Device.Cuda(0)))
            using (Pipelines.PipelineLoader.Load(folder, context, DType.BF16))
                alone = context.AllocatorStats.BytesInUse;
            using var ranks = Pipelines.ParallelPipeline.Load(folder, new Parallel.ParallelConfig { UlyssesDegree = 2, RingDegree = 2 },
                DType.BF16, device: Device.Cuda(0));
            var together = ranks.RankContexts.Sum(c => (double)c.AllocatorStats.BytesInUse);
            Assert.That(together, Is.EqualTo((double)alone).Within(10).Percent);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void DisposalFreesDeviceMemory()
    {
        using var cuda = Contexts.CudaOrIgnore();
        var start = cuda.AllocatorStats.BytesInUse;
        using (var scope = new TensorScope())
        {
            MatMul.Gemm(Tensor.Full(cuda, DType.BF16, 1, 256, 512), Tensor.Full(cuda, DType.BF16, 1, 128, 512));
            Assert.That(cuda.AllocatorStats.BytesInUse, Is.GreaterThan(start));
        }
        cuda.Synchronize();
        Assert.That(cuda.AllocatorStats.BytesInUse, Is.EqualTo(start));
    }
}
