using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Exporters.Json;

namespace XDit.Bench;

/// <summary>Adds the GFLOP/s column and a JSON report (next to the default markdown) to every benchmark.</summary>
public sealed class BenchConfig : ManualConfig
{
    public BenchConfig()
    {
        AddColumn(new FlopsColumn());
        AddExporter(JsonExporter.Full);
    }
}
