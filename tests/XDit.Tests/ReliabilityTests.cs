using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using XDit.Pipelines;
using XDit.Server;
using XDit.Serving;

namespace XDit.Tests;

/// <summary>
/// Hostile inputs, faults and leaks on the built-in tiny models: mutated configs and hostile prompts end
/// in a clean <see cref="XDitException"/> (or a valid result), an out-of-memory in the middle of a request
/// leaves the engine usable and nothing held, and 200 requests through the engine and through HTTP leave
/// the allocator exactly where one request left it.
/// </summary>
[TestFixture]
public class ReliabilityTests
{
    static string _folder = null!;

    [OneTimeSetUp]
    public void WriteModel()
    {
        _folder = Directory.CreateTempSubdirectory("xdit-reliability").FullName;
        Architectures.WriteRandomFolder("tiny-pixart", _folder, seed: 5, DType.F32);
    }

    [OneTimeTearDown]
    public void DeleteModel() => Directory.Delete(_folder, recursive: true);

    static readonly GenerationRequest Small = new() { Prompts = ["a kite"], Height = 64, Width = 64, Steps = 1, MaxSequenceLength = 30, Seed = 3 };

    // ---- hostile configs -----------------------------------------------------------------------

    /// <summary>Values a hostile or broken config might hold in place of a number.</summary>
    static readonly JsonNode?[] HostileValues =
    [
        -1, 0, 1_000_000_000, int.MaxValue, long.MaxValue, 1e300, -0.5, "16", null, true, new JsonArray(), new JsonObject(), 3.5,
    ];

    /// <summary>Every numeric field of every component's config (and model_index.json's entries) replaced in
    /// turn by a hostile value: loading succeeds or fails with XDitException naming the problem — never
    /// another exception, a hang, or an allocation the files do not justify (the config's sizes are
    /// checked against the weights before anything that large is made).</summary>
    [TestCase("tiny-pixart")]
    [TestCase("tiny-sd3")]
    [TestCase("tiny-flux")]
    public void MutatedConfigsLoadOrFailWithXDitException(string family)
    {
        var folder = Directory.CreateTempSubdirectory($"xdit-fuzz-{family}").FullName;
        try
        {
            Architectures.WriteRandomFolder(family, folder, seed: 5, DType.F32);
            FuzzConfigs(folder, new Random(family.Length));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    static void FuzzConfigs(string folder, Random random)
    {
        var configs = Directory.GetFiles(folder, "*.json", SearchOption.AllDirectories).Where(f => !f.Contains("tokenizer")).ToList();
        var (loaded, rejected) = (0, 0);
        foreach (var path in configs)
        {
            var original = File.ReadAllText(path);
            var root = JsonNode.Parse(original)!.AsObject();
            var keys = root.Where(p => p.Value is JsonValue).Select(p => p.Key).ToList();
            foreach (var key in keys.Concat(keys))
            {
                var hostile = HostileValues[random.Next(HostileValues.Length)];
                var mutated = JsonNode.Parse(original)!.AsObject();
                mutated[key] = hostile?.DeepClone();
                File.WriteAllText(path, mutated.ToJsonString());
                try
                {
                    using var context = Contexts.Cpu(threads: 1, memoryLimit: 1UL << 30);
                    using var pipeline = PipelineLoader.Load(folder, context);
                    loaded++;
                }
                catch (XDitException)
                {
                    rejected++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"{Path.GetRelativePath(folder, path)}: \"{key}\" = {hostile?.ToJsonString() ?? "null"} threw {e.GetType().Name}: {e.Message}");
                }
                finally
                {
                    File.WriteAllText(path, original);
                }
            }
            // Truncated and garbled files.
            foreach (var broken in new[] { original[..(original.Length / 2)], "", "[]", "{\"a\":", original.Replace(":", "::") })
            {
                File.WriteAllText(path, broken);
                try
                {
                    using var context = Contexts.Cpu(threads: 1);
                    using var pipeline = PipelineLoader.Load(folder, context);
                    loaded++;
                }
                catch (XDitException e)
                {
                    rejected++;
                    Assert.That(e.Message, Does.Contain(Path.GetFileName(Path.GetDirectoryName(path)!)).Or.Contain(Path.GetFileName(path)));
                }
                catch (Exception e)
                {
                    Assert.Fail($"{Path.GetRelativePath(folder, path)} garbled threw {e.GetType().Name}: {e.Message}");
                }
                finally
                {
                    File.WriteAllText(path, original);
                }
            }
        }
        TestContext.Out.WriteLine($"{loaded} mutated folders loaded, {rejected} rejected with XDitException");
        Assert.That(rejected, Is.GreaterThan(0));
    }

    // ---- hostile tokenizer files -------------------------------------------------------------

    /// <summary>Every file of a tokenizer folder (CLIP's BPE vocab.json and merges.txt, T5's SentencePiece
    /// spiece.model, their JSON configs) mutated in turn — bytes replaced, truncated, JSON punctuation
    /// inserted: the tokenizer loads and encodes, or fails with XDitException, never anything else.</summary>
    [TestCase("tokenizer", "clip")]
    [TestCase("tokenizer_3", "t5")]
    public void MutatedTokenizerFilesLoadOrFailWithXDitException(string component, string kind)
    {
        var folder = Directory.CreateTempSubdirectory("xdit-fuzz-tokenizer").FullName;
        try
        {
            Architectures.WriteRandomFolder("tiny-sd3", folder, seed: 5, DType.F32);
            var tokenizer = Path.Combine(folder, component);
            var (loaded, rejected) = (0, 0);
            foreach (var file in Directory.GetFiles(tokenizer))
            {
                var original = File.ReadAllBytes(file);
                for (int iteration = 0; iteration < 40; iteration++)
                {
                    var random = new Random(iteration * 31 + original.Length);
                    var bytes = (byte[])original.Clone();
                    switch (iteration % 4)
                    {
                        case 0:
                            for (int k = random.Next(1, 6); k > 0 && bytes.Length > 0; k--) bytes[random.Next(bytes.Length)] = (byte)random.Next(256);
                            break;
                        case 1:
                            Array.Resize(ref bytes, random.Next(0, bytes.Length));
                            break;
                        case 2:
                            if (bytes.Length > 0) bytes[random.Next(bytes.Length)] = "{}[],:\"\\\n -0"u8[random.Next(12)];
                            break;
                        default:
                            var start = random.Next(bytes.Length);
                            Array.Clear(bytes, start, Math.Min(bytes.Length - start, random.Next(1, 64)));
                            break;
                    }
                    File.WriteAllBytes(file, bytes);
                    try
                    {
                        string[] prompts = ["a red fox in the snow", "", "Ünïcödé 🦊 text"];
                        var ids = kind == "clip"
                            ? Text.ClipTokenizer.FromFolder(tokenizer).EncodeBatch(prompts).InputIds
                            : Text.T5Tokenizer.FromFolder(tokenizer).EncodeBatch(prompts, 30).InputIds;
                        Assert.That(ids.GetLength(0), Is.EqualTo(3));
                        loaded++;
                    }
                    catch (XDitException)
                    {
                        rejected++;
                    }
                    catch (Exception e)
                    {
                        Assert.Fail($"{component}/{Path.GetFileName(file)} mutation {iteration} threw {e.GetType().Name}: {e.Message}");
                    }
                }
                File.WriteAllBytes(file, original);
            }
            TestContext.Out.WriteLine($"{component}: {loaded} mutated tokenizers loaded, {rejected} rejected with XDitException");
            Assert.That(rejected, Is.GreaterThan(0));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ---- hostile prompts -----------------------------------------------------------------------

    [Test]
    public void HostilePromptsGenerateOrFailCleanly()
    {
        using var context = Contexts.Cpu();
        using var pipeline = PipelineLoader.Load(_folder, context);
        var invalidUtf8 = Encoding.UTF8.GetString([0x66, 0xff, 0xfe, 0xc3, 0x28, 0xe2, 0x82]);
        string[] prompts =
        [
            "", " ", new string('a', 1 << 20), string.Concat(Enumerable.Repeat("the ", 50_000)), invalidUtf8,
            "\0\u0001\u001b[31m\r\n\t", "\ud800 lone surrogate", "🦊🐋 emoji and 中文 and العربية", new string('\u200b', 1000),
        ];
        foreach (var prompt in prompts)
        {
            try
            {
                var result = pipeline.Generate(Small with { Prompts = [prompt], NegativePrompt = prompt, LatentsOnly = true });
                Assert.That(result.Latents.All(float.IsFinite), $"prompt of {prompt.Length} chars");
            }
            catch (XDitException)
            {
            }
        }
    }

    // ---- faults --------------------------------------------------------------------------------

    /// <summary>A memory limit that the weights and a small request fit in but a large request does not:
    /// the large one fails with OutOfMemory, holds nothing afterwards, and the engine goes on serving.</summary>
    [Test]
    public async Task OutOfMemoryMidRequestLeavesTheEngineUsable()
    {
        ulong weights, smallPeak;
        using (var probe = Contexts.Cpu())
        using (var pipeline = PipelineLoader.Load(_folder, probe))
        {
            weights = probe.AllocatorStats.BytesInUse;
            probe.ResetPeak();
            pipeline.Generate(Small);
            smallPeak = probe.AllocatorStats.PeakBytesInUse;
        }
        using var context = Contexts.Cpu(memoryLimit: smallPeak + (smallPeak - weights));
        using var engine = new XDitEngine(PipelineLoader.Load(_folder, context));
        var held = context.AllocatorStats.BytesInUse;
        var error = (await Assert.ThrowsAsync<XDitException>(async () => await engine.GenerateAsync(Small with { Height = 512, Width = 512 })))!;
        Assert.That(error.Status, Is.EqualTo(Native.XditStatus.OutOfMemory), error.Message);
        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(held), "the failed request freed what it held");
        var after = await engine.GenerateAsync(Small);
        Assert.That(after.Images, Has.Count.EqualTo(1));
        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(held));
    }

    // ---- soak ----------------------------------------------------------------------------------

    /// <summary>200 requests through the engine and 200 through HTTP: after the first (warm-up), the
    /// allocator holds exactly the weights between requests, its cache does not grow, and the managed heap
    /// stays within a few MiB.</summary>
    [Test]
    public async Task TwoHundredRequestsLeaveNothingBehind()
    {
        using var context = Contexts.Cpu();
        using var engine = new XDitEngine(PipelineLoader.Load(_folder, context));
        var held = context.AllocatorStats.BytesInUse;
        await engine.GenerateAsync(Small);
        var reserved = context.AllocatorStats.BytesReserved;
        var heap = Heap();
        for (int i = 0; i < 200; i++)
        {
            await engine.GenerateAsync(Small with { Seed = (ulong)i, Prompts = [$"request {i}"] });
            Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(held), $"request {i}");
        }
        Assert.That(context.AllocatorStats.BytesReserved, Is.LessThanOrEqualTo(reserved), "the allocator's cache grew");
        Assert.That(Heap() - heap, Is.LessThan(8L << 20), "the managed heap grew");

        var output = Directory.CreateTempSubdirectory("xdit-soak").FullName;
        var app = XDitServer.Build(engine, new ServerOptions { Port = 0, OutputFolder = output }, Small);
        await app.StartAsync();
        try
        {
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var client = new HttpClient { BaseAddress = new Uri(address) };
            heap = Heap();
            for (int i = 0; i < 200; i++)
            {
                using var response = await client.PostAsJsonAsync("/generate", new { prompt = $"http {i}", num_inference_steps = 1, seed = i, height = 64, width = 64 });
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), $"request {i}");
                Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(held), $"request {i}");
            }
            Assert.That(context.AllocatorStats.BytesReserved, Is.LessThanOrEqualTo(reserved), "the allocator's cache grew");
            Assert.That(Heap() - heap, Is.LessThan(16L << 20), "the managed heap grew");
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            Directory.Delete(output, recursive: true);
        }
    }

    static long Heap()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
