using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using XDit.Native;
using XDit.Ops;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>
/// The safetensors reader against the independent test reader (<see cref="GoldenTensors"/>) on every
/// golden file; writer → reader round trips for every dtype, sharded checkpoints, zero-copy loading
/// proven with the allocator's statistics; and hostile files: one test per malformation, and a seeded
/// fuzz loop, all of which must end in <see cref="XDitException"/> naming the file (and tensor).
/// </summary>
[TestFixture]
public class WeightsTests
{
    string _folder = null!;

    [SetUp]
    public void CreateFolder()
    {
        _folder = Path.Combine(Path.GetTempPath(), $"xdit-weights-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_folder);
    }

    [TearDown]
    public void DeleteFolder() => Directory.Delete(_folder, recursive: true);

    static string GoldenRoot => Path.GetDirectoryName(GoldenTensors.CaseFolder("pixart_alpha"))!;

    static string PixArtWeights => Path.Combine(GoldenTensors.CaseFolder("pixart_alpha"), "diffusion_pytorch_model.safetensors");

    // ---- golden files ---------------------------------------------------------------------------

    [Test]
    public void EveryGoldenTensorMatchesTheIndependentReader()
    {
        using var context = Contexts.Cpu();
        var files = Directory.EnumerateFiles(GoldenRoot, "*.safetensors", SearchOption.AllDirectories).Order().ToArray();
        Assert.That(files, Has.Length.GreaterThan(50));
        var seenDtypes = new HashSet<string>();
        foreach (var path in files)
        {
            var expected = GoldenTensors.Load(path);
            using var file = SafetensorsFile.Open(path);
            Assert.That(file.Names, Is.EqualTo(expected.Names.Order(StringComparer.Ordinal)), path);
            foreach (var name in file.Names)
            {
                var entry = expected[name];
                var where = $"{path}: {name}";
                seenDtypes.Add(entry.DType);
                var info = file.Info(name);
                Assert.That(info.DType.HeaderName(), Is.EqualTo(entry.DType), where);
                Assert.That(info.Shape, Is.EqualTo(entry.Shape), where);
                Assert.That(file.Bytes(name).SequenceEqual(entry.Data), Is.True, where);
                using var tensor = file.Load(name, context);
                Assert.That(tensor.Shape.ToArray(), Is.EqualTo(entry.Shape), where);
                switch (entry.DType)
                {
                    case "F32":
                        Assert.That(tensor.ToArray<float>(), Is.EqualTo(expected.F32(name)), where);
                        break;
                    case "F64":
                        Assert.That(tensor.DType, Is.EqualTo(DType.F32), where);
                        Assert.That(tensor.ToArray<float>(), Is.EqualTo(Array.ConvertAll(expected.F64(name), v => (float)v)), where);
                        break;
                    case "I64":
                        Assert.That(tensor.ToArray<long>(), Is.EqualTo(expected.I64(name)), where);
                        break;
                    case "BOOL":
                        Assert.That(tensor.ToArray<bool>(), Is.EqualTo(entry.Data.Select(b => b != 0)), where);
                        break;
                    default:
                        Assert.Fail($"{where}: the golden data gained the dtype {entry.DType}; extend this test");
                        break;
                }
            }
        }
        Assert.That(seenDtypes, Is.EquivalentTo(new[] { "F32", "F64", "I64", "BOOL" }));
    }

    [Test]
    public void GoldenWeightsCarryTheirMetadata()
    {
        using var file = SafetensorsFile.Open(PixArtWeights);
        Assert.That(file.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt" }));
        Assert.That(file.Path, Is.EqualTo(Path.GetFullPath(PixArtWeights)));
        Assert.That(file.DataStart % 8, Is.Zero);
        var info = file.Info("proj_out.weight");
        Assert.That(info.DType, Is.EqualTo(SafetensorsDType.F32));
        Assert.That(info.ByteLength, Is.EqualTo(info.NumElements * 4));
        Assert.That(info.NumElements, Is.EqualTo(info.Shape.Aggregate(1L, (n, d) => n * d)));
    }

    // ---- zero-copy loading ----------------------------------------------------------------------

    [Test]
    public void CpuLoadsWithoutConversionAllocateNothingAndOutliveTheFile()
    {
        var golden = GoldenTensors.Load(PixArtWeights);
        using var context = Contexts.Cpu();
        var before = context.AllocatorStats;
        var tensors = new Dictionary<string, Tensor>();
        using (var checkpoint = Checkpoint.OpenFile(PixArtWeights))
            foreach (var name in checkpoint.Names) tensors.Add(name, checkpoint.Load(name, context));
        try
        {
            var after = context.AllocatorStats;
            Assert.That(after.AllocationCount, Is.EqualTo(before.AllocationCount), "a matching-dtype CPU load maps, never allocates");
            Assert.That(after.BytesInUse, Is.EqualTo(before.BytesInUse));
            foreach (var (name, tensor) in tensors)
                Assert.That(tensor.ToArray<float>(), Is.EqualTo(golden.F32(name)), $"{name} read after the checkpoint was disposed");
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    [Test]
    public void WritingIntoAMappedTensorChangesNeitherTheFileNorLaterLoads()
    {
        var golden = GoldenTensors.Load(PixArtWeights);
        const string name = "proj_out.weight";
        using var context = Contexts.Cpu();
        using var file = SafetensorsFile.Open(PixArtWeights);
        using (var written = file.Load(name, context))
        {
            Elementwise.Fill(written, 7);
            Assert.That(written.ToArray<float>(), Is.All.EqualTo(7f));
            using var again = file.Load(name, context);
            Assert.That(again.ToArray<float>(), Is.EqualTo(golden.F32(name)), "each zero-copy tensor has a private mapping");
        }
        Assert.That(file.Bytes(name).SequenceEqual(golden[name].Data), Is.True);
        Assert.That(GoldenTensors.Load(PixArtWeights).F32(name), Is.EqualTo(golden.F32(name)), "the file on disk is unchanged");
    }

    [Test]
    public void UnalignedDataIsCopied()
    {
        // A U8 byte first puts the F32 tensor at an odd offset: it cannot be wrapped in place.
        var path = Path.Combine(_folder, "unaligned.safetensors");
        var values = new[] { 1.5f, -2.25f, 3e-3f };
        var data = new byte[1 + 12];
        data[0] = 9;
        MemoryMarshal.AsBytes(values.AsSpan()).CopyTo(data.AsSpan(1));
        WriteRaw(path, """{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[3],"data_offsets":[1,13]}}""", data);
        using var context = Contexts.Cpu();
        using var file = SafetensorsFile.Open(path);
        Assert.That((file.DataStart + file.Info("b").DataBegin) % 4, Is.Not.Zero);
        var before = context.AllocatorStats.AllocationCount;
        using var b = file.Load("b", context);
        Assert.That(context.AllocatorStats.AllocationCount, Is.EqualTo(before + 1));
        Assert.That(b.ToArray<float>(), Is.EqualTo(values));
        using var a = file.Load("a", context);
        Assert.That(a.DType, Is.EqualTo(DType.I32));
        Assert.That(a.ToArray<int>(), Is.EqualTo(new[] { 9 }));
    }

    [Test]
    public void CudaLoadsCopyTheSameValues()
    {
        using var cuda = Contexts.CudaOrIgnore();
        var golden = GoldenTensors.Load(PixArtWeights);
        using var file = SafetensorsFile.Open(PixArtWeights);
        foreach (var name in file.Names)
        {
            using var t = file.Load(name, cuda);
            Assert.That(t.Device, Is.EqualTo(Device.Cuda(0)));
            Assert.That(t.ToArray<float>(), Is.EqualTo(golden.F32(name)), name);
        }
        using var bf16 = file.Load("proj_out.weight", cuda, DType.BF16);
        Assert.That(bf16.ToArray<BFloat16>().Select(v => v.Bits), Is.EqualTo(golden.F32("proj_out.weight").Select(Bf16Bits)));
    }

    // ---- round trips ----------------------------------------------------------------------------

    [Test]
    public void RawBytesOfEveryDtypeRoundTrip()
    {
        var random = new Random(11);
        long[] shape = [3, 5];
        var doubles = Enumerable.Range(0, 15).Select(_ => (random.NextDouble() * 2 - 1) * 1e3).ToArray();
        var floats = Array.ConvertAll(doubles, d => (float)d);
        var ints = Enumerable.Range(0, 15).Select(_ => random.Next(-128, 128)).ToArray();
        var bytes = new Dictionary<SafetensorsDType, byte[]>
        {
            [SafetensorsDType.F64] = Bytes(doubles),
            [SafetensorsDType.F32] = Bytes(floats),
            [SafetensorsDType.F16] = Bytes(Array.ConvertAll(floats, f => (Half)f)),
            [SafetensorsDType.BF16] = Bytes(floats.Select(Bf16Bits).ToArray()),
            [SafetensorsDType.I64] = Bytes(Array.ConvertAll(ints, i => (long)i * 1_000_000_007L)),
            [SafetensorsDType.I32] = Bytes(Array.ConvertAll(ints, i => i * 65_537)),
            [SafetensorsDType.I16] = Bytes(Array.ConvertAll(ints, i => (short)(i * 200))),
            [SafetensorsDType.I8] = Bytes(Array.ConvertAll(ints, i => (sbyte)i)),
            [SafetensorsDType.U8] = Bytes(Array.ConvertAll(ints, i => (byte)(i + 128))),
            [SafetensorsDType.Bool] = Array.ConvertAll(ints, i => (byte)(i & 1)),
        };
        Assert.That(bytes.Keys, Is.EquivalentTo(Enum.GetValues<SafetensorsDType>()));

        var writer = new SafetensorsWriter();
        writer.Metadata["format"] = "pt";
        writer.Metadata["note"] = "ünïcode";
        // Added in reverse name order: the file must still list them sorted.
        foreach (var (dtype, data) in bytes.Reverse()) writer.Add($"t_{dtype}", dtype, shape, data);
        var path = Path.Combine(_folder, "all.safetensors");
        writer.Save(path);

        CheckLayout(path);
        using var context = Contexts.Cpu();
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Metadata, Is.EqualTo(writer.Metadata));
        foreach (var (dtype, data) in bytes)
        {
            var name = $"t_{dtype}";
            Assert.That(file.Info(name).DType, Is.EqualTo(dtype));
            Assert.That(file.Info(name).Shape, Is.EqualTo(shape));
            Assert.That(file.Bytes(name).SequenceEqual(data), Is.True, name);
            using var t = file.Load(name, context);
            Assert.That(t.Shape.ToArray(), Is.EqualTo(shape));
            var widened = dtype switch
            {
                SafetensorsDType.I16 => Array.ConvertAll(MemoryMarshal.Cast<byte, short>(data).ToArray(), v => (int)v),
                SafetensorsDType.I8 => Array.ConvertAll(MemoryMarshal.Cast<byte, sbyte>(data).ToArray(), v => (int)v),
                SafetensorsDType.U8 => Array.ConvertAll(data, v => (int)v),
                _ => null,
            };
            switch (dtype)
            {
                case SafetensorsDType.F64:
                    Assert.That(t.ToArray<float>(), Is.EqualTo(floats));
                    break;
                case SafetensorsDType.I16 or SafetensorsDType.I8 or SafetensorsDType.U8:
                    Assert.That(t.DType, Is.EqualTo(DType.I32));
                    Assert.That(t.ToArray<int>(), Is.EqualTo(widened), name);
                    break;
                default:
                    Assert.That(t.DType, Is.EqualTo(dtype.EngineDType()));
                    Assert.That(StoredBytes(t), Is.EqualTo(data), name);
                    break;
            }
        }
    }

    [Test]
    public void TensorsOfEveryEngineDtypeRoundTripIncludingStridedAndEmptyOnes()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var values = Enumerable.Range(0, 12).Select(i => (float)(i * 0.75 - 3)).ToArray();
        var matrix = Tensor.FromArray(context, values, 3, 4);
        var writer = new SafetensorsWriter()
            .Add("f32", matrix)
            .Add("f16", matrix.To(DType.F16))
            .Add("bf16", matrix.To(DType.BF16))
            .Add("i32", Tensor.FromArray(context, new[] { 1, -2, int.MaxValue }, 3))
            .Add("i64", Tensor.FromArray(context, new[] { long.MinValue, 5L }, 2, 1))
            .Add("bool", Tensor.FromArray(context, new[] { true, false, true }, 3))
            .Add("transposed", matrix.Transpose(0, 1))
            .Add("empty", Tensor.Empty(context, DType.F32, 0, 4))
            .Add("scalar", Tensor.Full(context, DType.F32, 2.5, []));
        Assert.That(writer.Count, Is.EqualTo(9));
        var path = Path.Combine(_folder, "tensors.safetensors");
        writer.Save(path);
        CheckLayout(path);

        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Metadata, Is.Empty);
        Assert.That(file.Load("f32", context).ToArray<float>(), Is.EqualTo(values));
        Assert.That(file.Load("f16", context).ToArray<Half>(), Is.EqualTo(values.Select(v => (Half)v)));
        Assert.That(file.Load("bf16", context).ToArray<BFloat16>().Select(v => v.Bits), Is.EqualTo(values.Select(Bf16Bits)));
        Assert.That(file.Load("i32", context).ToArray<int>(), Is.EqualTo(new[] { 1, -2, int.MaxValue }));
        Assert.That(file.Load("i64", context).Shape.ToArray(), Is.EqualTo(new long[] { 2, 1 }));
        Assert.That(file.Load("i64", context).ToArray<long>(), Is.EqualTo(new[] { long.MinValue, 5L }));
        Assert.That(file.Load("bool", context).ToArray<bool>(), Is.EqualTo(new[] { true, false, true }));
        var transposed = new float[12];
        for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) transposed[j * 3 + i] = values[i * 4 + j];
        Assert.That(file.Info("transposed").Shape, Is.EqualTo(new long[] { 4, 3 }));
        Assert.That(file.Load("transposed", context).ToArray<float>(), Is.EqualTo(transposed));
        Assert.That(file.Load("empty", context).Shape.ToArray(), Is.EqualTo(new long[] { 0, 4 }));
        Assert.That(file.Info("scalar").Shape, Is.Empty);
        Assert.That(file.Load("scalar", context).ToArray<float>(), Is.EqualTo(new[] { 2.5f }));
    }

    [Test]
    public void LoadConvertsOnRequestAndRefusesLossyConversions()
    {
        var random = new Random(5);
        var doubles = Enumerable.Range(0, 40).Select(_ => (random.NextDouble() - 0.5) * 100).ToArray();
        var floats = Array.ConvertAll(doubles, d => (float)d);
        var path = Path.Combine(_folder, "convert.safetensors");
        new SafetensorsWriter()
            .Add("f64", SafetensorsDType.F64, [40], Bytes(doubles))
            .Add("f32", SafetensorsDType.F32, [40], Bytes(floats))
            .Add("u8", SafetensorsDType.U8, [4], new byte[] { 0, 1, 2, 255 })
            .Add("i8", SafetensorsDType.I8, [2], Bytes(new sbyte[] { -128, 127 }))
            .Add("i64", SafetensorsDType.I64, [2], Bytes(new[] { -5L, int.MaxValue }))
            .Add("i64big", SafetensorsDType.I64, [3], Bytes(new[] { 0L, 1L << 40, 3L }))
            .Save(path);
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        using var file = SafetensorsFile.Open(path);

        Assert.That(file.Load("f32", context, DType.BF16).ToArray<BFloat16>().Select(v => v.Bits), Is.EqualTo(floats.Select(Bf16Bits)));
        Assert.That(file.Load("f32", context, DType.F16).ToArray<Half>(), Is.EqualTo(floats.Select(f => (Half)f)));
        Assert.That(file.Load("f64", context, DType.BF16).ToArray<BFloat16>().Select(v => v.Bits), Is.EqualTo(floats.Select(Bf16Bits)),
            "F64 rounds to F32, then to BF16");
        Assert.That(file.Load("u8", context).ToArray<int>(), Is.EqualTo(new[] { 0, 1, 2, 255 }));
        Assert.That(file.Load("u8", context, DType.Bool).ToArray<bool>(), Is.EqualTo(new[] { false, true, true, true }));
        Assert.That(file.Load("u8", context, DType.F32).ToArray<float>(), Is.EqualTo(new[] { 0f, 1f, 2f, 255f }));
        Assert.That(file.Load("i8", context, DType.I64).ToArray<long>(), Is.EqualTo(new[] { -128L, 127L }));
        Assert.That(file.Load("i64", context, DType.I32).ToArray<int>(), Is.EqualTo(new[] { -5, int.MaxValue }));

        var tooBig = Assert.Throws<XDitException>(() => file.Load("i64big", context, DType.I32))!;
        Assert.That(tooBig.Message, Does.Contain(path).And.Contain("'i64big'").And.Contain("1099511627776").And.Contain("element 1"));
        var floatToInt = Assert.Throws<XDitException>(() => file.Load("f32", context, DType.I32))!;
        Assert.That(floatToInt.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(floatToInt.Message, Does.Contain(path).And.Contain("'f32'").And.Contain("i32"));
        Assert.Throws<XDitException>(() => file.Load("f64", context, DType.Bool));
    }

    [Test]
    public void TensorsLargerThanOneChunkMoveCompletely()
    {
        // Every copy and check runs in 16 MiB chunks: these tensors span two or three of them.
        const int count = 4_500_001;
        var random = new Random(3);
        var doubles = Enumerable.Range(0, count).Select(i => random.NextDouble() * 1e6 - 5e5).ToArray();
        var longs = Array.ConvertAll(doubles, d => (long)d);
        var floats = Array.ConvertAll(doubles, d => (float)d);
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var path = Path.Combine(_folder, "large.safetensors");
        new SafetensorsWriter()
            .Add("f64", SafetensorsDType.F64, [count], Bytes(doubles))
            .Add("i64", SafetensorsDType.I64, [count], Bytes(longs))
            .Add("f32", Tensor.FromArray(context, floats, count))
            .Save(path);
        using (var file = SafetensorsFile.Open(path))
        {
            Assert.That(file.Load("f64", context).ToArray<float>().SequenceEqual(floats), Is.True, "f64");
            Assert.That(file.Load("i64", context, DType.I32).ToArray<int>().SequenceEqual(Array.ConvertAll(longs, v => (int)v)), Is.True, "i64");
            Assert.That(file.Load("f32", context).ToArray<float>().SequenceEqual(floats), Is.True, "f32");
        }

        // An unaligned F32 tensor goes through the chunked upload; a bad BOOL byte in a late chunk is found.
        var unaligned = Path.Combine(_folder, "unaligned-large.safetensors");
        var data = new byte[1 + 4L * count + 20_000_000];
        MemoryMarshal.AsBytes(floats.AsSpan()).CopyTo(data.AsSpan(1));
        data[1 + 4L * count + 17_000_000] = 3;
        WriteRaw(unaligned, $$$"""
            {"b": {"dtype":"U8","shape":[1],"data_offsets":[0,1]},
             "f": {"dtype":"F32","shape":[{{{count}}}],"data_offsets":[1,{{{1 + 4L * count}}}]},
             "m": {"dtype":"BOOL","shape":[20000000],"data_offsets":[{{{1 + 4L * count}}},{{{data.Length}}}]}}
            """, data);
        using (var file = SafetensorsFile.Open(unaligned))
        {
            Assert.That(file.Load("f", context).ToArray<float>().SequenceEqual(floats), Is.True, "unaligned f32");
            Assert.That(Assert.Throws<XDitException>(() => file.Load("m", context))!.Message, Does.Contain("byte 3 at element 17000000"));
        }
    }

    // ---- sharded checkpoints --------------------------------------------------------------------

    [Test]
    public void ShardedWriterSplitsAtTheLimitAndCheckpointReadsItBack()
    {
        // Bytes 40, 120, 20, 200, 4, 80, 32 with a 128-byte limit: a new shard whenever the next
        // tensor would overflow the current one; the 200-byte tensor gets a shard of its own.
        int[] lengths = [10, 30, 5, 50, 1, 20, 8];
        int[] expectedShard = [1, 2, 3, 4, 5, 5, 5];
        var names = lengths.Select((_, i) => $"blocks.{i}.weight").ToArray();
        var values = lengths.Select((n, i) => Enumerable.Range(0, n).Select(k => i * 100f + k).ToArray()).ToArray();
        var writer = new ShardedSafetensorsWriter("diffusion_pytorch_model", maxShardBytes: 128);
        writer.Metadata["format"] = "pt";
        for (int i = 0; i < names.Length; i++) writer.Add(names[i], SafetensorsDType.F32, [lengths[i]], Bytes(values[i]));

        var written = writer.Save(_folder);
        var shardNames = Enumerable.Range(1, 5).Select(i => $"diffusion_pytorch_model-0000{i}-of-00005.safetensors").ToArray();
        Assert.That(written, Is.EqualTo(shardNames.Append("diffusion_pytorch_model.safetensors.index.json")));

        using (var index = JsonDocument.Parse(File.ReadAllText(Path.Combine(_folder, "diffusion_pytorch_model.safetensors.index.json"))))
        {
            Assert.That(index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64(), Is.EqualTo(lengths.Sum() * 4));
            var map = index.RootElement.GetProperty("weight_map").EnumerateObject().ToArray();
            Assert.That(map.Select(p => p.Name), Is.EqualTo(names.Order(StringComparer.Ordinal)));
            for (int i = 0; i < names.Length; i++)
                Assert.That(index.RootElement.GetProperty("weight_map").GetProperty(names[i]).GetString(), Is.EqualTo(shardNames[expectedShard[i] - 1]));
        }
        for (int s = 0; s < 5; s++)
        {
            using var shard = SafetensorsFile.Open(Path.Combine(_folder, shardNames[s]));
            Assert.That(shard.Names, Is.EqualTo(names.Where((_, i) => expectedShard[i] == s + 1)));
            Assert.That(shard.Metadata["format"], Is.EqualTo("pt"));
        }

        using var context = Contexts.Cpu();
        using var checkpoint = Checkpoint.Open(_folder, "diffusion_pytorch_model");
        Assert.That(checkpoint.IsSharded, Is.True);
        Assert.That(checkpoint.Path, Is.EqualTo(Path.Combine(_folder, "diffusion_pytorch_model.safetensors.index.json")));
        Assert.That(checkpoint.Names, Is.EqualTo(names.Order(StringComparer.Ordinal)));
        Assert.That(checkpoint.Contains("blocks.3.weight"), Is.True);
        Assert.That(checkpoint.Contains("blocks.7.weight"), Is.False);
        for (int i = 0; i < names.Length; i++)
        {
            Assert.That(checkpoint.FileOf(names[i]), Is.EqualTo(Path.Combine(_folder, shardNames[expectedShard[i] - 1])));
            Assert.That(checkpoint.Info(names[i]).Shape, Is.EqualTo(new long[] { lengths[i] }));
            using var t = checkpoint.Load(names[i], context);
            Assert.That(t.ToArray<float>(), Is.EqualTo(values[i]), names[i]);
        }
    }

    [Test]
    public void OneShardIsASingleFileAndResavingRemovesStaleFiles()
    {
        var sharded = new ShardedSafetensorsWriter("model", 8);
        sharded.Add("a", SafetensorsDType.F32, [2], Bytes(new[] { 1f, 2f }));
        sharded.Add("b", SafetensorsDType.F32, [2], Bytes(new[] { 3f, 4f }));
        Assert.That(sharded.Save(_folder), Has.Count.EqualTo(3));

        var single = new ShardedSafetensorsWriter("model", 1 << 20);
        single.Add("a", SafetensorsDType.F32, [2], Bytes(new[] { 5f, 6f }));
        Assert.That(single.Save(_folder), Is.EqualTo(new[] { "model.safetensors" }));
        Assert.That(Directory.EnumerateFiles(_folder).Select(Path.GetFileName), Is.EqualTo(new[] { "model.safetensors" }));

        using var context = Contexts.Cpu();
        using var checkpoint = Checkpoint.Open(_folder, "model");
        Assert.That(checkpoint.IsSharded, Is.False);
        Assert.That(checkpoint.Names, Is.EqualTo(new[] { "a" }));
        using var a = checkpoint.Load("a", context);
        Assert.That(a.ToArray<float>(), Is.EqualTo(new[] { 5f, 6f }));
    }

    [Test]
    public void CheckpointOpenSaysWhatItLookedFor()
    {
        var neither = Assert.Throws<XDitException>(() => Checkpoint.Open(_folder, "diffusion_pytorch_model"))!;
        Assert.That(neither.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(neither.Message, Does.Contain(_folder)
            .And.Contain("diffusion_pytorch_model.safetensors nor diffusion_pytorch_model.safetensors.index.json"));

        File.WriteAllBytes(Path.Combine(_folder, "model.bin"), [1, 2, 3]);
        Assert.That(Assert.Throws<XDitException>(() => Checkpoint.Open(_folder, "model"))!.Message, Does.Contain("model.bin").And.Contain("pickle"));

        File.Copy(PixArtWeights, Path.Combine(_folder, "model.safetensors"));
        File.WriteAllText(Path.Combine(_folder, "model.safetensors.index.json"), """{"weight_map": {}}""");
        Assert.That(Assert.Throws<XDitException>(() => Checkpoint.Open(_folder, "model"))!.Message, Does.Contain("stale"));

        Assert.That(Assert.Throws<XDitException>(() => Checkpoint.Open(Path.Combine(_folder, "nowhere"), "model"))!.Message,
            Does.Contain("nowhere").And.Contain("no such folder"));
    }

    [Test]
    public void IndexNamingAMissingShardIsAnError()
    {
        var index = WriteIndex(new() { ["w"] = "model-00001-of-00002.safetensors" });
        var error = Assert.Throws<XDitException>(() => Checkpoint.OpenIndex(index))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain(index).And.Contain("model-00001-of-00002.safetensors").And.Contain("'w'").And.Contain("does not exist"));
    }

    [Test]
    public void TensorListedInTheIndexButAbsentFromItsShardIsAnError()
    {
        WriteShard("one.safetensors", "a");
        var index = WriteIndex(new() { ["a"] = "one.safetensors", ["ghost"] = "one.safetensors" });
        using var context = Contexts.Cpu();
        using var checkpoint = Checkpoint.OpenIndex(index);
        var error = Assert.Throws<XDitException>(() => checkpoint.Load("a", context))!;
        Assert.That(error.Message, Does.Contain(index).And.Contain("'ghost'").And.Contain("one.safetensors").And.Contain("does not contain it"));
    }

    [Test]
    public void NameInTwoShardsIsAnError()
    {
        WriteShard("one.safetensors", "a", "shared");
        WriteShard("two.safetensors", "b", "shared");
        var index = WriteIndex(new() { ["a"] = "one.safetensors", ["shared"] = "one.safetensors", ["b"] = "two.safetensors" });
        using var context = Contexts.Cpu();
        using var checkpoint = Checkpoint.OpenIndex(index);
        using (var a = checkpoint.Load("a", context)) Assert.That(a.ToArray<float>(), Is.EqualTo(new[] { 1f }));
        var error = Assert.Throws<XDitException>(() => checkpoint.Load("b", context))!;
        Assert.That(error.Message, Does.Contain(index).And.Contain("'shared'").And.Contain("two.safetensors").And.Contain("one.safetensors"));

        // The same name twice in the weight map itself.
        var twice = Path.Combine(_folder, "twice.safetensors.index.json");
        File.WriteAllText(twice, """{"weight_map": {"a": "one.safetensors", "a": "two.safetensors"}}""");
        var duplicate = Assert.Throws<XDitException>(() => Checkpoint.OpenIndex(twice))!;
        Assert.That(duplicate.Message, Does.Contain(twice).And.Contain("'a'"));
    }

    [Test]
    public void ShardTensorMissingFromTheIndexAndIndexPathsOutsideItsFolderAreErrors()
    {
        WriteShard("one.safetensors", "a", "extra");
        var index = WriteIndex(new() { ["a"] = "one.safetensors" });
        using (var checkpoint = Checkpoint.OpenIndex(index))
        {
            using var context = Contexts.Cpu();
            Assert.That(Assert.Throws<XDitException>(() => checkpoint.Load("a", context))!.Message,
                Does.Contain("'extra'").And.Contain("not listed in the index"));
            Assert.That(Assert.Throws<XDitException>(() => checkpoint.Info("missing"))!.Message,
                Does.Contain(index).And.Contain("'missing'").And.Contain("not in the checkpoint"));
        }
        var escaping = WriteIndex(new() { ["a"] = "../one.safetensors" });
        Assert.That(Assert.Throws<XDitException>(() => Checkpoint.OpenIndex(escaping))!.Message,
            Does.Contain("'a'").And.Contain("not a file name"));
        File.WriteAllText(escaping, """{"metadata": {}}""");
        Assert.That(Assert.Throws<XDitException>(() => Checkpoint.OpenIndex(escaping))!.Message, Does.Contain("weight_map"));
    }

    // ---- hostile files: one test per malformation -----------------------------------------------

    const string Good = """{"dtype":"F32","shape":[2],"data_offsets":[0,8]}""";

    static IEnumerable<TestCaseData> MalformedHeaders()
    {
        TestCaseData Case(string why, string header, string? tensor, string phrase) =>
            new TestCaseData(header, tensor, phrase).SetName($"MalformedHeader({why})");
        yield return Case("not an object", "[1, 2]", null, "not a JSON object");
        yield return Case("syntax error", """{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}""", null, "not valid JSON");
        yield return Case("trailing garbage", "{} x", null, "not valid JSON");
        yield return Case("entry not an object", """{"w": 5}""", "w", "is a number, expected an object");
        yield return Case("missing dtype", """{"w": {"shape":[2],"data_offsets":[0,8]}}""", "w", "has no 'dtype'");
        yield return Case("missing shape", """{"w": {"dtype":"F32","data_offsets":[0,8]}}""", "w", "has no 'shape'");
        yield return Case("missing offsets", """{"w": {"dtype":"F32","shape":[2]}}""", "w", "has no 'data_offsets'");
        yield return Case("unknown dtype", """{"w": {"dtype":"F8_E4M3","shape":[8],"data_offsets":[0,8]}}""", "w", "unsupported dtype 'F8_E4M3'");
        yield return Case("dtype not a string", """{"w": {"dtype":4,"shape":[2],"data_offsets":[0,8]}}""", "w", "dtype that is a number");
        yield return Case("negative dimension", """{"w": {"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "w", "'shape' entry -2");
        yield return Case("fractional dimension", """{"w": {"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}""", "w", "'shape' entry 2.5");
        yield return Case("string dimension", """{"w": {"dtype":"F32","shape":["2"],"data_offsets":[0,8]}}""", "w", "'shape' entry a string");
        yield return Case("shape not an array", """{"w": {"dtype":"F32","shape":2,"data_offsets":[0,8]}}""", "w", "'shape' that is a number");
        yield return Case("too many dimensions", $$$"""{"w": {"dtype":"F32","shape":[{{{string.Join(",", Enumerable.Repeat(1, 65))}}}],"data_offsets":[0,4]}}""", "w", "more than 64 'shape' entries");
        yield return Case("size mismatch", """{"w": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "w", "needs 12 bytes but data_offsets [0, 8] hold 8");
        yield return Case("element count overflow", """{"w": {"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}""", "w", "more than 2^63");
        yield return Case("offsets beyond the data", """{"w": {"dtype":"F32","shape":[100],"data_offsets":[0,400]}}""", "w", "beyond the 16 bytes");
        yield return Case("offsets reversed", """{"w": {"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", "w", "end before they begin");
        yield return Case("three offsets", """{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}""", "w", "more than 2 'data_offsets'");
        yield return Case("one offset", """{"w": {"dtype":"F32","shape":[1],"data_offsets":[4]}}""", "w", "has 1 data_offsets");
        yield return Case("huge offset", """{"w": {"dtype":"F32","shape":[1],"data_offsets":[0,99999999999999999999]}}""", "w", "'data_offsets' entry 99999999999999999999");
        yield return Case("overlapping ranges", """{"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}, "b": {"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "b", "overlapping those of 'a'");
        yield return Case("repeated name", $$$"""{"w": {{{Good}}}, "w": {"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", "w", "appears twice");
        yield return Case("repeated field", """{"w": {"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}""", "w", "has 'dtype' twice");
        yield return Case("metadata value not a string", $$"""{"__metadata__": {"format": 1}, "w": {{Good}}}""", null, "__metadata__ entry 'format' is a number");
        yield return Case("metadata not an object", $$"""{"__metadata__": ["pt"], "w": {{Good}}}""", null, "__metadata__ is an array");
        yield return Case("metadata twice", """{"__metadata__": {}, "__metadata__": {}}""", null, "__metadata__ twice");
        yield return Case("metadata key twice", """{"__metadata__": {"k": "a", "k": "b"}}""", null, "the key 'k' twice");
        yield return Case("nesting too deep", $$$"""{"w": {"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":{{{new string('[', 100)}}}{{{new string(']', 100)}}}}}""", null, "not valid JSON");
    }

    [TestCaseSource(nameof(MalformedHeaders))]
    public void MalformedHeaderIsAnInvalidArgumentNamingTheFileAndTensor(string header, string? tensor, string phrase)
    {
        var path = Path.Combine(_folder, "bad.safetensors");
        WriteRaw(path, header, new byte[16]);
        var error = Assert.Throws<XDitException>(() => SafetensorsFile.Open(path).Dispose())!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(path + ":"));
        Assert.That(error.Message, Does.Contain(phrase));
        if (tensor is not null) Assert.That(error.Message, Does.Contain($"tensor '{tensor}'"));
    }

    [Test]
    public void InvalidUtf8InANameIsAnError()
    {
        var path = Path.Combine(_folder, "utf8.safetensors");
        var header = Encoding.UTF8.GetBytes($$"""{"wXX": {{Good}}}""");
        var at = Array.IndexOf(header, (byte)'X');
        header[at] = 0xC3; // a lead byte followed by a non-continuation byte
        header[at + 1] = 0x28;
        WriteRaw(path, header, new byte[8]);
        var error = Assert.Throws<XDitException>(() => SafetensorsFile.Open(path))!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain("UTF-8"));
    }

    [Test]
    public void FileShorterThanTheLengthFieldIsAnError()
    {
        var path = Path.Combine(_folder, "short.safetensors");
        File.WriteAllBytes(path, [1, 0, 0]);
        var error = Assert.Throws<XDitException>(() => SafetensorsFile.Open(path))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(path).And.Contain("3 bytes long"));
        File.WriteAllBytes(path, []);
        Assert.That(Assert.Throws<XDitException>(() => SafetensorsFile.Open(path))!.Message, Does.Contain("0 bytes long"));
    }

    [TestCase(0xFFFF_FFFF_FFFF_FFFFUL)]
    [TestCase(0x8000_0000_0000_0000UL)]
    [TestCase(1000UL)]
    [TestCase(17UL)]
    public void HeaderLengthBeyondTheFileIsAnError(ulong headerLength)
    {
        var path = Path.Combine(_folder, "long.safetensors");
        var bytes = new byte[8 + 16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        "{}              "u8.CopyTo(bytes.AsSpan(8));
        File.WriteAllBytes(path, bytes);
        var error = Assert.Throws<XDitException>(() => SafetensorsFile.Open(path))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(path).And.Contain($"header of {headerLength} bytes").And.Contain("only 16 bytes follow"));
    }

    [Test]
    public void HeaderLengthAboveTheLimitIsAnErrorEvenInsideTheFile()
    {
        // A sparse file just past the limit: the length field fits the file but is absurd.
        var path = Path.Combine(_folder, "absurd.safetensors");
        using (var stream = File.Create(path))
        {
            Span<byte> field = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(field, 100_000_001);
            stream.Write(field);
            stream.SetLength(8 + 100_000_008);
        }
        var error = Assert.Throws<XDitException>(() => SafetensorsFile.Open(path))!;
        Assert.That(error.Message, Does.StartWith(path).And.Contain("header of 100000001 bytes").And.Contain("limit of 100000000"));
    }

    [Test]
    public void BoolDataOtherThanZeroOrOneIsAnErrorAtLoad()
    {
        var path = Path.Combine(_folder, "bool.safetensors");
        WriteRaw(path, """{"mask": {"dtype":"BOOL","shape":[4],"data_offsets":[0,4]}}""", [1, 0, 2, 1]);
        using var context = Contexts.Cpu();
        using var file = SafetensorsFile.Open(path);
        var error = Assert.Throws<XDitException>(() => file.Load("mask", context))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(error.Message, Does.StartWith(path).And.Contain("tensor 'mask'").And.Contain("byte 2 at element 2"));
    }

    [Test]
    public void UnknownNamesAndMissingFilesAreNamed()
    {
        using var context = Contexts.Cpu();
        using (var file = SafetensorsFile.Open(PixArtWeights))
        {
            var error = Assert.Throws<XDitException>(() => file.Load("no.such.weight", context))!;
            Assert.That(error.Message, Does.Contain(PixArtWeights).And.Contain("'no.such.weight'"));
        }
        var missing = Path.Combine(_folder, "missing.safetensors");
        Assert.That(Assert.Throws<XDitException>(() => SafetensorsFile.Open(missing))!.Message, Does.StartWith(missing).And.Contain("no such"));
        Assert.That(Assert.Throws<XDitException>(() => SafetensorsFile.Open(_folder))!.Message, Does.StartWith(_folder).And.Contain("cannot be read"));
    }

    [Test]
    public void TensorsTooLargeForASpanAreRefusedByBytes()
    {
        // A sparse file: 2 GiB of unwritten data behind a valid header; nothing is read.
        var path = Path.Combine(_folder, "huge.safetensors");
        var header = Encoding.UTF8.GetBytes("""{"big": {"dtype":"U8","shape":[2147483648],"data_offsets":[0,2147483648]}}      """);
        Assert.That(header.Length % 8, Is.Zero);
        using (var stream = File.Create(path))
        {
            var field = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(field, (ulong)header.Length);
            stream.Write(field);
            stream.Write(header);
            stream.SetLength(8 + header.Length + (1L << 31));
        }
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Info("big").ByteLength, Is.EqualTo(1L << 31));
        var error = Assert.Throws<XDitException>(() => file.Bytes("big"))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.Unsupported));
        Assert.That(error.Message, Does.StartWith(path).And.Contain("'big'").And.Contain("load it as a tensor"));
    }

    [Test]
    public void MoreDimensionsThanTheEngineHasIsUnsupportedAtLoad()
    {
        var path = Path.Combine(_folder, "rank7.safetensors");
        WriteRaw(path, """{"w": {"dtype":"F32","shape":[1,1,1,1,1,1,2],"data_offsets":[0,8]}}""", new byte[8]);
        using var context = Contexts.Cpu();
        using var file = SafetensorsFile.Open(path);
        Assert.That(file.Bytes("w").Length, Is.EqualTo(8));
        var error = Assert.Throws<XDitException>(() => file.Load("w", context))!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.Unsupported));
        Assert.That(error.Message, Does.Contain("'w'").And.Contain("7 dimensions"));
    }

    // ---- fuzzing --------------------------------------------------------------------------------

    [Test]
    public void MutatedFilesOpenAndLoadOrFailWithXDitException()
    {
        var valid = Path.Combine(_folder, "valid.safetensors");
        var writer = new SafetensorsWriter();
        writer.Metadata["format"] = "pt";
        writer.Add("blocks.0.weight", SafetensorsDType.F32, [4, 3], new byte[48])
            .Add("blocks.0.bias", SafetensorsDType.F16, [5], new byte[10])
            .Add("norm.bf16", SafetensorsDType.BF16, [2, 2], new byte[8])
            .Add("ids", SafetensorsDType.I64, [3], new byte[24])
            .Add("steps", SafetensorsDType.I32, [2], new byte[8])
            .Add("mask", SafetensorsDType.Bool, [6], new byte[] { 0, 1, 1, 0, 1, 0 })
            .Add("sigmas", SafetensorsDType.F64, [3], new byte[24])
            .Add("pixels", SafetensorsDType.U8, [4], new byte[4])
            .Add("small", SafetensorsDType.I8, [2], new byte[2])
            .Add("short", SafetensorsDType.I16, [3], new byte[6])
            .Add("empty", SafetensorsDType.F32, [0, 7], ReadOnlyMemory<byte>.Empty);
        writer.Save(valid);
        var original = File.ReadAllBytes(valid);
        var dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(original);

        using var context = Contexts.Cpu(threads: 1);
        var (opened, rejected) = (0, 0);
        for (int iteration = 0; iteration < 400; iteration++)
        {
            var random = new Random(1000 + iteration);
            var bytes = (byte[])original.Clone();
            var mutation = iteration % 5;
            switch (mutation)
            {
                case 0: // random bytes in the header
                    for (int k = random.Next(1, 4); k > 0; k--) bytes[random.Next(8, dataStart)] = (byte)random.Next(256);
                    break;
                case 1: // random bytes in the data
                    for (int k = random.Next(1, 8); k > 0; k--) bytes[random.Next(dataStart, bytes.Length)] = (byte)random.Next(256);
                    break;
                case 2: // truncation
                    Array.Resize(ref bytes, random.Next(0, bytes.Length));
                    break;
                case 3: // header length field
                    ulong[] lengths = [ulong.MaxValue, 1UL << 63, (ulong)random.NextInt64(), (ulong)bytes.Length, (ulong)(dataStart - 8 + random.Next(-16, 17)), 0];
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes, lengths[random.Next(lengths.Length)]);
                    break;
                default: // a character of the header replaced by JSON punctuation
                    bytes[random.Next(8, dataStart)] = "{}[],:\"-0e."u8[random.Next(11)];
                    break;
            }
            var path = Path.Combine(_folder, $"fuzz{iteration}.safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                opened++;
                foreach (var name in file.Names)
                {
                    _ = file.Info(name);
                    _ = file.Bytes(name).Length;
                    using var t = file.Load(name, context);
                    using var asFloat = t.To(DType.F32);
                }
            }
            catch (XDitException e)
            {
                rejected++;
                Assert.That(e.Status, Is.EqualTo(XditStatus.InvalidArgument).Or.EqualTo(XditStatus.Unsupported), $"iteration {iteration}: {e.Message}");
                Assert.That(e.Message, Does.Contain(path), $"iteration {iteration}");
            }
            catch (Exception e)
            {
                Assert.Fail($"iteration {iteration} (mutation {mutation}) threw {e.GetType().Name} instead of XDitException: {e}");
            }
            File.Delete(path);
        }
        Assert.That(opened, Is.GreaterThan(50), "data mutations leave the file readable");
        Assert.That(rejected, Is.GreaterThan(100), "header mutations are caught");
    }

    // ---- helpers --------------------------------------------------------------------------------

    /// <summary>bfloat16 bits of <paramref name="value"/>, rounded to nearest even (NaN stays NaN).</summary>
    static ushort Bf16Bits(float value)
    {
        var bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        var rounding = 0x7FFFu + ((bits >> 16) & 1);
        return (ushort)((bits + rounding) >> 16);
    }

    static byte[] Bytes<T>(T[] values) where T : unmanaged => MemoryMarshal.AsBytes(values.AsSpan()).ToArray();

    static byte[] StoredBytes(Tensor t) => t.DType switch
    {
        DType.F32 => Bytes(t.ToArray<float>()),
        DType.F16 => Bytes(t.ToArray<Half>()),
        DType.BF16 => Bytes(t.ToArray<BFloat16>()),
        DType.I32 => Bytes(t.ToArray<int>()),
        DType.I64 => Bytes(t.ToArray<long>()),
        DType.Bool => Bytes(t.ToArray<bool>()),
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    /// <summary>A file with exactly this header (space-padded to 8 bytes) and data.</summary>
    static void WriteRaw(string path, string header, byte[] data) => WriteRaw(path, Encoding.UTF8.GetBytes(header), data);

    static void WriteRaw(string path, byte[] header, byte[] data)
    {
        var padded = header.Concat(Enumerable.Repeat((byte)' ', (8 - header.Length % 8) % 8)).ToArray();
        var bytes = new byte[8 + padded.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)padded.Length);
        padded.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + padded.Length);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>The layout the writer promises, read from the raw bytes: header padded with spaces to a
    /// multiple of 8, names sorted, data back to back and each tensor aligned to its element size.</summary>
    static void CheckLayout(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.That(headerLength % 8, Is.Zero, "header padded to 8 bytes");
        var header = Encoding.UTF8.GetString(bytes, 8, headerLength);
        Assert.That(header.TrimEnd(' '), Does.EndWith("}"), "padding is spaces");
        using var json = JsonDocument.Parse(header);
        var tensors = json.RootElement.EnumerateObject().Where(p => p.Name != "__metadata__").ToArray();
        Assert.That(tensors.Select(p => p.Name), Is.EqualTo(tensors.Select(p => p.Name).Order(StringComparer.Ordinal)), "names sorted");
        var ranges = tensors
            .Select(p => (Name: p.Name, Size: ElementSize(p.Value.GetProperty("dtype").GetString()!),
                Begin: p.Value.GetProperty("data_offsets")[0].GetInt64(), End: p.Value.GetProperty("data_offsets")[1].GetInt64()))
            .OrderBy(r => r.Begin).ThenBy(r => r.End)
            .ToArray();
        long position = 0;
        foreach (var r in ranges)
        {
            Assert.That(r.Begin, Is.EqualTo(position), $"{r.Name} follows the previous tensor");
            Assert.That((8 + headerLength + r.Begin) % r.Size, Is.Zero, $"{r.Name} aligned to its element size");
            position = r.End;
        }
        Assert.That(8 + headerLength + position, Is.EqualTo(bytes.Length), "no bytes after the last tensor");
    }

    static int ElementSize(string dtype) => dtype switch
    {
        "F64" or "I64" => 8,
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "I8" or "U8" or "BOOL" => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>A shard holding F32 [1] tensors with the values 1, 2, ... in the order given.</summary>
    void WriteShard(string file, params string[] names)
    {
        var writer = new SafetensorsWriter();
        for (int i = 0; i < names.Length; i++) writer.Add(names[i], SafetensorsDType.F32, [1], Bytes(new[] { i + 1f }));
        writer.Save(Path.Combine(_folder, file));
    }

    string WriteIndex(Dictionary<string, string> weightMap)
    {
        var path = Path.Combine(_folder, $"index{Guid.NewGuid():N}.safetensors.index.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new { metadata = new { total_size = 0 }, weight_map = weightMap }));
        return path;
    }
}
