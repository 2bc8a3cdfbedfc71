using System.Text.Json;
using XDit.Native;
using XDit.Tensors;

namespace XDit.Cli;

/// <summary>
/// <c>xdit check --ops --device cuda[:N]</c>: every operator case of <see cref="OpChecks"/> on the device
/// against the CPU backend, on the same fresh inputs, with poisoned outputs; relative L2 below 1e-5 in f32
/// and 1e-2 in bf16/f16. With <c>--device cpu</c> the reference is the CPU's portable path (baseline C++
/// attention tiles, built-in GEMM) and the checked context the default one (AVX2 tiles, OpenBLAS), so the
/// check runs anywhere. An operator the device does not have yet is reported as missing, not passed.
/// <c>--bench</c> adds each passing case's median time (synchronised calls) and its GFLOP/s.
/// </summary>
internal static class OpCheckCommand
{
    public sealed record Row(string Op, string Shape, DType DType, string Status, double RelativeL2, double Tolerance,
        double? MedianMs, double? Gflops, string Detail)
    {
        /// <summary>Achieved bandwidth of a bandwidth-bound case (<see cref="OpChecks.Case.Elements"/>).</summary>
        public double? GBps { get; init; }
    }

    /// <param name="filter">Only the cases whose operator or shape contains this text.</param>
    public static int Run(string deviceText, IReadOnlyList<DType> dtypes, bool bench, string? filter, string? jsonPath, TextWriter output)
    {
        var cases = OpChecks.All.Select((c, index) => (Case: c, Seed: index + 1))
            .Where(c => filter is null || c.Case.Op.Contains(filter, StringComparison.OrdinalIgnoreCase) || c.Case.Shape.Contains(filter, StringComparison.OrdinalIgnoreCase))
            .ToList();
        if (cases.Count == 0) throw new UsageException($"--filter '{filter}' matches no operator case");
        var device = ModelSource.ParseDevice(deviceText);
        var portable = new ContextOptions { CpuIsa = CpuIsa.Baseline, CpuGemm = CpuGemm.Builtin };
        using var reference = DeviceContext.Create(Device.Cpu, device.Kind == DeviceKind.Cpu ? portable : null);
        using var context = DeviceContext.Create(device);
        var referenceName = device.Kind == DeviceKind.Cpu ? "the CPU's portable kernels (baseline C++, built-in GEMM)"
            : $"the CPU ({reference.CpuIsa}, GEMM {reference.CpuGemm})";
        var checkedName = device.Kind == DeviceKind.Cpu ? $"cpu ({context.CpuIsa}, GEMM {context.CpuGemm})" : device.ToString();
        output.WriteLine($"xdit check --ops: {checkedName} against {referenceName}, {cases.Count} cases × {string.Join(", ", dtypes.Select(d => d.Name()))}");

        var rows = new List<Row>();
        foreach (var (c, seed) in cases)
            foreach (var dtype in dtypes)
            {
                var row = Check(c, seed, dtype, reference, context, bench);
                rows.Add(row);
                output.WriteLine($"  {row.Status,-7} {row.Op} {row.Shape} {row.DType.Name()}" +
                                 (row.Status == "ok" ? $" (rel. L2 {row.RelativeL2:0.0e+0})" : $": {row.Detail}"));
            }

        output.WriteLine();
        output.WriteLine($"| op | case | dtype | result | rel. L2 | bound |{(bench ? " median ms | GFLOP/s | GB/s |" : "")}");
        output.WriteLine($"|---|---|---|---|---:|---:|{(bench ? "---:|---:|---:|" : "")}");
        foreach (var r in rows)
            output.WriteLine($"| {r.Op} | {r.Shape} | {r.DType.Name()} | {r.Status} | {(double.IsNaN(r.RelativeL2) ? "–" : r.RelativeL2.ToString("0.0e+0"))} | {r.Tolerance:0e+0} |" +
                             (bench ? $" {(r.MedianMs is { } ms ? ms.ToString("0.000") : "–")} | {(r.Gflops is { } g ? g.ToString("0.0") : "–")} | {(r.GBps is { } b ? b.ToString("0.0") : "–")} |" : ""));
        int passed = rows.Count(r => r.Status == "ok"), missing = rows.Count(r => r.Status == "missing");
        output.WriteLine($"{passed} passed, {rows.Count - passed - missing} failed, {missing} missing on {checkedName}");
        if (jsonPath is not null) WriteJson(jsonPath, checkedName, referenceName, rows);
        return passed == rows.Count ? 0 : 1;
    }

    internal static Row Check(OpChecks.Case c, int seed, DType dtype, DeviceContext reference, DeviceContext context, bool bench)
    {
        var tolerance = dtype == DType.F32 ? 1e-5 : 1e-2;
        using var scope = new TensorScope();
        Row Fail(string status, string detail) => new(c.Op, c.Shape, dtype, status, double.NaN, tolerance, null, null, detail);
        var expected = c.Prepare(new OpChecks.CaseInputs(reference, dtype, seed))();
        Func<Tensor[]> call;
        Tensor[] actual;
        try
        {
            call = c.Prepare(new OpChecks.CaseInputs(context, dtype, seed));
            actual = call();
            context.Synchronize();
        }
        catch (XDitException e) when (e.Status == XditStatus.Unsupported)
        {
            return Fail("missing", e.Message);
        }
        catch (XDitException e)
        {
            return Fail("error", e.Message);
        }
        double error = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            using var want = expected[i].To(DType.F32);
            using var got = actual[i].To(DType.F32);
            var distance = Comparison.RelativeL2(got.ToArray<float>(), want.ToArray<float>());
            if (!double.IsFinite(distance)) return Fail("FAIL", $"output {i} has NaN or infinity where the reference has a value (an element left unwritten?)");
            error = Math.Max(error, distance);
        }
        if (error > tolerance) return new(c.Op, c.Shape, dtype, "FAIL", error, tolerance, null, null, $"relative L2 {error:0.0e+0} > {tolerance:0e+0}");
        double? ms = null, gflops = null, gbps = null;
        if (bench)
        {
            var time = OpChecks.Time(call, context, runs: 7);
            ms = time.TotalMilliseconds;
            gflops = c.Flops > 0 ? c.Flops / time.TotalSeconds / 1e9 : null;
            gbps = c.Elements > 0 ? c.Elements * dtype.ElementSize() / time.TotalSeconds / 1e9 : null;
        }
        return new(c.Op, c.Shape, dtype, "ok", error, tolerance, ms, gflops, "") { GBps = gbps };
    }

    static void WriteJson(string path, string checkedName, string referenceName, List<Row> rows)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("device", checkedName);
        json.WriteString("reference", referenceName);
        json.WriteStartArray("cases");
        foreach (var r in rows)
        {
            json.WriteStartObject();
            json.WriteString("op", r.Op);
            json.WriteString("case", r.Shape);
            json.WriteString("dtype", r.DType.Name());
            json.WriteString("result", r.Status);
            if (!double.IsNaN(r.RelativeL2)) json.WriteNumber("relative_l2", r.RelativeL2);
            json.WriteNumber("bound", r.Tolerance);
            if (r.MedianMs is { } ms) json.WriteNumber("median_ms", ms);
            if (r.Gflops is { } g) json.WriteNumber("gflops", g);
            if (r.GBps is { } b) json.WriteNumber("gb_per_s", b);
            if (r.Detail.Length > 0) json.WriteString("detail", r.Detail);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}
