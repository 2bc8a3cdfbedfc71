namespace XDit.Server;

/// <summary>How the HTTP service listens and what it allows.</summary>
public sealed record ServerOptions
{
    /// <summary>Loopback by default: exposing the service is an explicit choice.</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>0 picks a free port (tests).</summary>
    public int Port { get; init; } = 6000;

    /// <summary>When set, every request but /health needs <c>Authorization: Bearer &lt;token&gt;</c>.</summary>
    public string? BearerToken { get; init; }

    /// <summary>Where <c>output = "path"</c> writes images; request paths are confined below it.</summary>
    public string OutputFolder { get; init; } = Path.Combine(Environment.CurrentDirectory, "results");

    public long MaxRequestBodyBytes { get; init; } = 1 << 20;

    public int MaxImagesPerRequest { get; init; } = 8;
}
