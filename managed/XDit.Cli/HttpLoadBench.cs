using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using XDit.Server;
using XDit.Serving;

namespace XDit.Cli;

/// <summary>
/// <c>xdit bench --http</c>: the HTTP service's throughput. Serves the model on a free loopback port in
/// this process (the same <see cref="XDitServer"/> as <c>xdit serve</c>), then, at each concurrency,
/// keeps that many clients posting <c>/generate</c> (PNG out) until <c>--requests</c> have been sent or
/// <c>--max_seconds</c> have passed, and reports completed images per second and the p50/p99 latency a
/// client saw. Bounded in count and time, loopback only: it loads nothing but its own server.
/// </summary>
public static class HttpLoadBench
{
    public sealed record Level(int Concurrency, int Completed, int Failed, double Seconds, double ImagesPerSecond, double P50Ms, double P99Ms);

    public static IReadOnlyList<Level> Run(LoadedModel loaded, string name, IReadOnlyList<int> concurrencies, int requests, TimeSpan budget,
        object body, TextWriter output)
    {
        using var engine = new XDitEngine(loaded.Release(), queueCapacity: Math.Max(16, concurrencies.Max()));
        var folder = Directory.CreateTempSubdirectory("xdit-load").FullName;
        var app = XDitServer.Build(engine, new ServerOptions { Host = "127.0.0.1", Port = 0, OutputFolder = folder }, loaded.Defaults);
        try
        {
            app.StartAsync().GetAwaiter().GetResult();
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            using var client = new HttpClient { BaseAddress = new Uri(address), Timeout = budget + TimeSpan.FromMinutes(1) };
            var levels = concurrencies.Select(c => Measure(client, c, requests, budget, body)).ToList();
            Write(levels, name, address, output);
            return levels;
        }
        finally
        {
            app.StopAsync().GetAwaiter().GetResult();
            app.DisposeAsync().AsTask().GetAwaiter().GetResult();
            Directory.Delete(folder, recursive: true);
        }
    }

    static Level Measure(HttpClient client, int concurrency, int requests, TimeSpan budget, object body)
    {
        var latencies = new List<double>();
        int started = 0, failed = 0;
        var clock = Stopwatch.StartNew();
        async Task Client()
        {
            while (Interlocked.Increment(ref started) <= requests && clock.Elapsed < budget)
            {
                var sent = Stopwatch.StartNew();
                bool ok;
                try
                {
                    using var response = await client.PostAsJsonAsync("/generate", body);
                    await response.Content.ReadAsByteArrayAsync();
                    ok = response.IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    ok = false;
                }
                lock (latencies)
                    if (ok) latencies.Add(sent.Elapsed.TotalMilliseconds);
                    else failed++;
            }
        }
        Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Client))).GetAwaiter().GetResult();
        var seconds = clock.Elapsed.TotalSeconds;
        var sorted = latencies.Order().ToArray();
        double Percentile(double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        return new Level(concurrency, sorted.Length, failed, seconds, sorted.Length / seconds, Percentile(0.5), Percentile(0.99));
    }

    static void Write(IReadOnlyList<Level> levels, string model, string address, TextWriter output)
    {
        output.WriteLine();
        output.WriteLine($"{model} behind POST /generate at {address} (PNG responses; latency as a client sees it)");
        output.WriteLine("| concurrency | completed | failed | seconds | images/s | p50 ms | p99 ms |");
        output.WriteLine("|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var l in levels)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {l.Concurrency} | {l.Completed} | {l.Failed} | {l.Seconds:F1} | {l.ImagesPerSecond:F2} | {l.P50Ms:F1} | {l.P99Ms:F1} |"));
    }
}
