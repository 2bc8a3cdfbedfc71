using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using XDit.Imaging;
using XDit.Pipelines;
using XDit.Serving;

namespace XDit.Server;

/// <summary>
/// The HTTP service: <c>POST /generate</c> (PNG, base64 JSON, or files written below the output folder),
/// <c>GET /health</c>, <c>GET /metrics</c> (Prometheus text). Requests are validated (400 with the reason),
/// queued in the engine (503 when its queue is full), cancelled when the client goes away; bodies are
/// size-limited; an optional bearer token is compared in constant time; errors never carry stack traces.
/// Loopback by default. Stopping the host lets the running request finish.
/// </summary>
public static class XDitServer
{
    public static WebApplication Build(XDitEngine engine, ServerOptions options, GenerationRequest defaults, string[]? args = null)
    {
        var builder = WebApplication.CreateSlimBuilder(args ?? []);
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes);
        if (args is null || !args.Any(a => a.StartsWith("--urls", StringComparison.Ordinal)))
            builder.WebHost.UseUrls($"http://{options.Host}:{options.Port}");
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = TimeSpan.FromMinutes(5));
        var app = builder.Build();
        var metrics = new Metrics();
        var outputRoot = Path.GetFullPath(options.OutputFolder);

        app.Use(async (context, next) =>
        {
            try
            {
                if (options.BearerToken is not null && context.Request.Path != "/health" && !Authorized(context.Request, options.BearerToken))
                {
                    context.Response.Headers.WWWAuthenticate = "Bearer";
                    await Error(context, 401, "missing or wrong bearer token");
                    return;
                }
                await next(context);
            }
            catch (BadHttpRequestException e)
            {
                await Error(context, e.StatusCode, e.StatusCode == 413 ? "request body too large" : "bad request");
            }
            catch (Exception) when (!context.Response.HasStarted)
            {
                await Error(context, 500, "internal error");
            }
        });

        app.MapGet("/health", () => Results.Json(new { status = "ok", queue_depth = engine.QueueDepth, queue_capacity = engine.QueueCapacity }));
        app.MapGet("/metrics", () => Results.Text(metrics.Render(engine.QueueDepth, engine.Pipeline.Context.AllocatorStats),
            "text/plain; version=0.0.4"));
        app.MapPost("/generate", async (HttpContext context) =>
        {
            var clock = Stopwatch.StartNew();
            var status = await Generate(context, engine, options, defaults, outputRoot);
            metrics.Record(status, clock.Elapsed);
        });
        return app;
    }

    static async Task<int> Generate(HttpContext context, XDitEngine engine, ServerOptions options, GenerationRequest defaults, string outputRoot)
    {
        GenerateBody body;
        try
        {
            using var json = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
            body = GenerateBody.Parse(json.RootElement, engine.Pipeline, options, defaults);
        }
        catch (JsonException)
        {
            return await Error(context, 400, "the body is not valid JSON");
        }
        catch (BadRequestException e)
        {
            return await Error(context, 400, e.Message);
        }
        string? folder = null;
        if (body.Output == "path" && (folder = Confine(outputRoot, body.SaveDiskPath)) is null)
            return await Error(context, 400, "save_disk_path must be a relative path inside the server's output folder");

        GenerationResult result;
        try
        {
            result = await engine.GenerateAsync(body.Request, cancellation: context.RequestAborted);
        }
        catch (EngineBusyException e)
        {
            context.Response.Headers.RetryAfter = "5";
            return await Error(context, 503, e.Message);
        }
        catch (OperationCanceledException)
        {
            return 499; // the client went away; nothing to answer
        }
        catch (XDitException e) when (e.Status == Native.XditStatus.InvalidArgument)
        {
            return await Error(context, 400, e.Message);
        }
        catch (XDitException)
        {
            return await Error(context, 500, "generation failed");
        }

        var timings = result.Timings.ToDictionary(t => t.Stage, t => Math.Round(t.Duration.TotalMilliseconds, 1));
        switch (body.Output)
        {
            case "png":
                using (var png = new MemoryStream())
                {
                    PngWriter.Write(png, result.Images[0], result.Width, result.Height);
                    context.Response.ContentType = "image/png";
                    context.Response.Headers["X-Timings-Ms"] = JsonSerializer.Serialize(timings);
                    await context.Response.Body.WriteAsync(png.ToArray());
                }
                return 200;
            case "base64":
                var images = result.Images.Select(rgb =>
                {
                    using var png = new MemoryStream();
                    PngWriter.Write(png, rgb, result.Width, result.Height);
                    return Convert.ToBase64String(png.ToArray());
                }).ToArray();
                await Results.Json(new { images, timings_ms = timings }).ExecuteAsync(context);
                return 200;
            default:
                Directory.CreateDirectory(folder!);
                var paths = new List<string>();
                for (int i = 0; i < result.Images.Count; i++)
                {
                    var path = Path.Combine(folder!, $"image_{body.Request.Seed}_{result.Height}x{result.Width}_{i}.png");
                    PngWriter.Write(path, result.Images[i], result.Width, result.Height);
                    paths.Add(Path.GetRelativePath(outputRoot, path));
                }
                await Results.Json(new { paths, timings_ms = timings }).ExecuteAsync(context);
                return 200;
        }
    }

    /// <summary>The folder for a request's relative path, or null when it would leave the output root.</summary>
    static string? Confine(string root, string? relative)
    {
        if (string.IsNullOrEmpty(relative)) return root;
        if (Path.IsPathRooted(relative) || relative.Contains('\0')) return null;
        var full = Path.GetFullPath(Path.Combine(root, relative));
        return full == root || full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal) ? full : null;
    }

    static bool Authorized(HttpRequest request, string token)
    {
        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal)) return false;
        // Hashing first makes the comparison constant-time in the length too.
        return CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(header[7..])),
            SHA256.HashData(Encoding.UTF8.GetBytes(token)));
    }

    static async Task<int> Error(HttpContext context, int status, string message)
    {
        if (context.Response.HasStarted) return status;
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new { error = message });
        return status;
    }
}
