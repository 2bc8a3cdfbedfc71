using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using XDit.Pipelines;
using XDit.Server;
using XDit.Serving;

namespace XDit.Tests;

/// <summary>The engine API (queue, threads, cancellation, disposal) and the HTTP service over real
/// loopback requests, on the built-in tiny model.</summary>
[TestFixture]
public class EngineAndServerTests
{
    static string _folder = null!;
    static readonly GenerationRequest Defaults = new() { MaxSequenceLength = 30, Height = 128, Width = 128, Steps = 2 };

    [OneTimeSetUp]
    public void WriteModel()
    {
        _folder = Directory.CreateTempSubdirectory("xdit-engine").FullName;
        PixArtArchitecture.Get("tiny-pixart").WriteRandomFolder(_folder, seed: 3, DType.BF16);
    }

    [OneTimeTearDown]
    public void DeleteModel() => Directory.Delete(_folder, recursive: true);

    static GenerationRequest Request(ulong seed) => Defaults with { Prompts = ["a boat"], Seed = seed, LatentsOnly = true };

    [Test]
    public async Task ConcurrentCallersGetTheSequentialResults()
    {
        using var context = Contexts.Cpu();
        using var engine = new XDitEngine(PixArtPipeline.Load(_folder, context, DType.BF16), queueCapacity: 8);
        var expected = new float[4][];
        for (int i = 0; i < 4; i++) expected[i] = (await engine.GenerateAsync(Request((ulong)i))).Latents;
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Task.Run(() => engine.GenerateAsync(Request((ulong)i)))));
        for (int i = 0; i < 4; i++) Assert.That(concurrent[i].Latents, Is.EqualTo(expected[i]), $"request {i}");
    }

    [Test]
    public async Task FullQueueCancellationAndDisposal()
    {
        using var context = Contexts.Cpu();
        var baseline = context.AllocatorStats.BytesInUse;
        // f32 from a bf16 folder: the converted weights live in the allocator (not zero-copy mappings).
        var engine = new XDitEngine(PixArtPipeline.Load(_folder, context, DType.F32), queueCapacity: 1);
        Assert.That(context.AllocatorStats.BytesInUse, Is.GreaterThan(baseline), "converted weights are held");

        // A request cancelled after its first step stops there, and the engine goes on.
        using var cancel = new CancellationTokenSource();
        var running = engine.GenerateAsync(Request(1) with { Steps = 50 }, new SynchronousProgress(p => { if (p.Stage == "denoising") cancel.Cancel(); }), cancel.Token);
        Assert.That(async () => await running, Throws.InstanceOf<OperationCanceledException>());

        // One running + one waiting fill a queue of capacity 1: the third is refused. The running one
        // is held at its first step until the refusal has been seen, so the outcome does not depend on timing.
        using var gate = new ManualResetEventSlim();
        var first = engine.GenerateAsync(Request(2), new SynchronousProgress(_ => gate.Wait(TimeSpan.FromMinutes(1))));
        var second = engine.GenerateAsync(Request(3));
        Assert.Throws<EngineBusyException>(() => engine.GenerateAsync(Request(4)));
        gate.Set();
        await Task.WhenAll(first, second);
        Assert.That((await engine.GenerateAsync(Request(5))).Latents.All(float.IsFinite), "usable after a cancellation");

        engine.Dispose();
        Assert.That(context.AllocatorStats.BytesInUse, Is.EqualTo(baseline), "disposal frees every weight and temporary");
        Assert.Throws<ObjectDisposedException>(() => engine.GenerateAsync(Request(6)));
    }

    sealed class SynchronousProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }

    static async Task<(WebApplication App, HttpClient Client, string Output, XDitEngine Engine, DeviceContext Context)> Start(
        string? token = null, int queue = 4)
    {
        var context = Contexts.Cpu();
        var engine = new XDitEngine(PixArtPipeline.Load(_folder, context, DType.BF16), queue);
        var output = Directory.CreateTempSubdirectory("xdit-server-out").FullName;
        var app = XDitServer.Build(engine, new ServerOptions { Port = 0, BearerToken = token, OutputFolder = output }, Defaults);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Assert.That(address, Does.StartWith("http://127.0.0.1:"), "loopback by default");
        return (app, new HttpClient { BaseAddress = new Uri(address), Timeout = TimeSpan.FromMinutes(2) }, output, engine, context);
    }

    static async Task Stop((WebApplication App, HttpClient Client, string Output, XDitEngine Engine, DeviceContext Context) server)
    {
        await server.App.StopAsync();
        await server.App.DisposeAsync();
        server.Client.Dispose();
        server.Engine.Dispose();
        server.Context.Dispose();
        Directory.Delete(server.Output, recursive: true);
    }

    [Test]
    public async Task HttpServiceAnswersValidAndInvalidRequests()
    {
        var server = await Start();
        try
        {
            var client = server.Client;
            var png = await client.PostAsJsonAsync("/generate", new { prompt = "a fox", num_inference_steps = 2, seed = 1 });
            Assert.That(png.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            Assert.That(png.Content.Headers.ContentType!.MediaType, Is.EqualTo("image/png"));
            var bytes = await png.Content.ReadAsByteArrayAsync();
            Assert.That(bytes.AsSpan(1, 3).ToArray(), Is.EqualTo("PNG"u8.ToArray()));

            var base64 = await client.PostAsJsonAsync("/generate", new { prompt = new[] { "a", "b" }, num_inference_steps = 1, output = "base64" });
            using (var json = JsonDocument.Parse(await base64.Content.ReadAsStringAsync()))
                Assert.That(json.RootElement.GetProperty("images").GetArrayLength(), Is.EqualTo(2));

            var saved = await client.PostAsJsonAsync("/generate", new { prompt = "c", num_inference_steps = 1, output = "path", save_disk_path = "run1" });
            using (var json = JsonDocument.Parse(await saved.Content.ReadAsStringAsync()))
            {
                var path = json.RootElement.GetProperty("paths")[0].GetString()!;
                Assert.That(File.Exists(Path.Combine(server.Output, path)), path);
            }

            async Task<string> Rejected(object body)
            {
                var response = await client.PostAsJsonAsync("/generate", body);
                Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), JsonSerializer.Serialize(body));
                var text = await response.Content.ReadAsStringAsync();
                Assert.That(text, Does.Not.Contain("   at "), "no stack traces");
                return text;
            }
            Assert.That(await Rejected(new { prompt = "" }), Does.Contain("empty"));
            Assert.That(await Rejected(new { prompt = "x", height = 100 }), Does.Contain("multiples of 16"));
            Assert.That(await Rejected(new { prompt = "x", num_inference_steps = 0 }), Does.Contain("num_inference_steps"));
            Assert.That(await Rejected(new { prompt = "x", sampler = "euler" }), Does.Contain("unknown field 'sampler'"));
            Assert.That(await Rejected(new { prompt = "x", output = "path", save_disk_path = "../escape" }), Does.Contain("save_disk_path"));
            Assert.That(await Rejected(new { prompt = "x", output = "path", save_disk_path = "/etc" }), Does.Contain("save_disk_path"));
            var notJson = await client.PostAsync("/generate", new StringContent("{prompt:"));
            Assert.That(notJson.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
            var huge = await client.PostAsync("/generate", new StringContent(new string('x', 2 << 20)));
            Assert.That(huge.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));

            Assert.That(await client.GetStringAsync("/health"), Does.Contain("\"ok\""));
            var metrics = await client.GetStringAsync("/metrics");
            Assert.That(metrics, Does.Contain("xdit_requests_total{status=\"200\"} 3").And.Contain("xdit_queue_depth"));
        }
        finally
        {
            await Stop(server);
        }
    }

    [Test]
    public async Task ACancelledRequestStopsAndTheServiceGoesOn()
    {
        var server = await Start();
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            Assert.That(async () => await server.Client.PostAsJsonAsync("/generate", new { prompt = "slow", num_inference_steps = 200 }, cancel.Token),
                Throws.InstanceOf<OperationCanceledException>());
            // The engine stops the abandoned request between steps; the next one is served.
            var next = await server.Client.PostAsJsonAsync("/generate", new { prompt = "fast", num_inference_steps = 1 });
            Assert.That(next.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            string metrics;
            do metrics = await server.Client.GetStringAsync("/metrics");
            while (!metrics.Contains("status=\"499\"") && DateTime.UtcNow < deadline);
            Assert.That(metrics, Does.Contain("xdit_requests_total{status=\"499\"} 1"), "the cancelled request is counted, not answered");
        }
        finally
        {
            await Stop(server);
        }
    }

    [Test]
    public async Task TokenAndQueueLimits()
    {
        var server = await Start(token: "s3cret", queue: 1);
        try
        {
            var client = server.Client;
            var anonymous = await client.PostAsJsonAsync("/generate", new { prompt = "x" });
            Assert.That(anonymous.StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            Assert.That((await client.GetAsync("/health")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "health needs no token");
            client.DefaultRequestHeaders.Authorization = new("Bearer", "wrong");
            Assert.That((await client.GetAsync("/metrics")).StatusCode, Is.EqualTo(HttpStatusCode.Unauthorized));
            client.DefaultRequestHeaders.Authorization = new("Bearer", "s3cret");
            var burst = await Task.WhenAll(Enumerable.Range(0, 6).Select(i =>
                client.PostAsJsonAsync("/generate", new { prompt = "x", num_inference_steps = 6, seed = i, output = "base64" })));
            var codes = burst.Select(r => r.StatusCode).ToList();
            Assert.That(codes, Has.Some.EqualTo(HttpStatusCode.OK));
            Assert.That(codes, Has.Some.EqualTo(HttpStatusCode.ServiceUnavailable), "beyond the queue: 503");
            Assert.That(codes.All(c => c is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable), string.Join(", ", codes));
        }
        finally
        {
            await Stop(server);
        }
    }
}
