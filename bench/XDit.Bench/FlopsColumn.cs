using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace XDit.Bench;

/// <summary>Benchmarks that know their floating-point operation count per invocation.</summary>
public interface IFlopCounted
{
    double FlopsPerOperation { get; }
}

/// <summary>Adds "GFLOP/s" = FLOPs per operation / mean time, for benchmarks implementing
/// <see cref="IFlopCounted"/> (the FLOP count is read from a fresh instance with the case's parameters).</summary>
public sealed class FlopsColumn : IColumn
{
    public string Id => nameof(FlopsColumn);
    public string ColumnName => "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Floating-point operations per second (2·M·N·K for a GEMM), in billions";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is null) return "-";
        if (Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IFlopCounted instance) return "-";
        foreach (var parameter in benchmarkCase.Parameters.Items)
            benchmarkCase.Descriptor.Type.GetProperty(parameter.Name)?.SetValue(instance, parameter.Value);
        var seconds = report.ResultStatistics.Mean * 1e-9;
        return (instance.FlopsPerOperation / seconds / 1e9).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }
}
