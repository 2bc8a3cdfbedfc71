using XDit.Pipelines;
using XDit.Server;
using XDit.Serving;

namespace XDit.Cli;

/// <summary><c>xdit serve</c>: loads a model once — on one context, or resident on the in-process ranks
/// of xDiT's parallel degrees (<c>--ulysses_degree 2 --use_cfg_parallel</c>, …) — and serves
/// <c>POST /generate</c> until interrupted (Ctrl+C finishes the running request, then exits). Loopback
/// unless <c>--host</c> says otherwise.</summary>
public static class ServeCommand
{
    public static int Run(CommandLine options, IReadOnlyList<string> rawArguments, TextWriter output)
    {
        var source = ModelSource.Parse(options);
        var serverOptions = new ServerOptions
        {
            Host = options.String("host", "127.0.0.1")!,
            Port = options.Int("port", 6000, min: 0, max: 65535),
            BearerToken = options.String("token") ?? Environment.GetEnvironmentVariable("XDIT_TOKEN"),
            OutputFolder = Path.GetFullPath(options.String("output_folder", "results")!),
        };
        var queue = options.Int("queue_size", 16, min: 1, max: 10_000);
        var urls = options.String("urls");
        var mesh = MeshOptions.Parse(options);
        var useGraph = options.Flag("use_cuda_graph");
        options.RejectUnknown("serve");
        if (useGraph && StepGraph.ParallelismProblem(mesh.SequenceParallelDegree > 1, mesh.PipeFusionDegree > 1) is { } graphProblem)
            throw new UsageException(graphProblem);

        using var loaded = source.Load(output, mesh);
        using var engine = new XDitEngine(loaded.Release(), queue);
        var app = XDitServer.Build(engine, serverOptions, loaded.Defaults with { UseGraph = useGraph }, urls is null ? null : ["--urls", urls]);
        output.WriteLine($"serving {loaded.Name} on {urls ?? $"http://{serverOptions.Host}:{serverOptions.Port}"} (POST /generate, GET /health, GET /metrics)");
        app.Run();
        return 0;
    }
}
