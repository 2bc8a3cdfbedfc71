using System.Text.Json;
using XDit.Weights;

namespace XDit.Cli.Golden;

/// <summary>One compared output of a golden case.</summary>
public sealed record GoldenResult(string Case, string Output, double Error, double Tolerance, string? Note = null)
{
    public bool Passed => Note is null && double.IsFinite(Error) && Error < Tolerance;
}

/// <summary>
/// <c>xdit check --golden DIR</c>: runs golden case folders in the golden data's format — a model case
/// (<c>case.json</c> with kind "model": the class, its config and weights, the call and its outputs), a
/// scheduler case (kind "scheduler"), a tokenizer case (<c>cases.json</c>) — or every case an
/// <c>index.json</c> lists, whatever the class, config and shapes. New cases are data, not code. Prints
/// each output's error against the case's tolerance; the exit code is 1 when any output fails, 2 for a
/// folder that is not a golden case.
/// </summary>
public static class GoldenRunner
{
    public static int Run(string folder, TextWriter output)
    {
        if (!Directory.Exists(folder)) throw new UsageException($"--golden {folder}: no such folder");
        var results = new List<GoldenResult>();
        foreach (var caseFolder in CaseFolders(folder))
        {
            try
            {
                results.AddRange(RunCase(caseFolder));
            }
            catch (Exception e) when (e is XDitException or InvalidDataException or JsonException or KeyNotFoundException or NotSupportedException)
            {
                results.Add(new GoldenResult(Path.GetFileName(caseFolder), "-", double.NaN, 0, e.Message.Split('\n')[0]));
            }
        }
        output.WriteLine("| case | output | rel L2 | tolerance | result |");
        output.WriteLine("|---|---|---:|---:|---|");
        foreach (var r in results)
            output.WriteLine($"| {r.Case} | {r.Output} | {(double.IsNaN(r.Error) ? "-" : r.Error.ToString("E2"))} | {r.Tolerance:G3} | " +
                             (r.Passed ? "pass" : "FAIL" + (r.Note is null ? "" : ": " + r.Note)) + " |");
        var failed = results.Count(r => !r.Passed);
        output.WriteLine($"{results.Count - failed} passed, {failed} failed");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>The case folders below <paramref name="folder"/>: itself when it is a case, else the cases
    /// its index.json lists (recursively for nested indexes such as golden/text).</summary>
    static IEnumerable<string> CaseFolders(string folder)
    {
        if (File.Exists(Path.Combine(folder, "case.json")) || File.Exists(Path.Combine(folder, "cases.json")))
        {
            yield return folder;
            yield break;
        }
        var index = Path.Combine(folder, "index.json");
        if (!File.Exists(index)) throw new UsageException($"--golden {folder}: not a golden case folder (no case.json, cases.json or index.json)");
        var json = JsonConfig.Load(index).Root;
        foreach (var entry in json.GetProperty("cases").EnumerateArray())
        {
            var sub = Path.Combine(folder, entry.GetProperty("case").GetString()!);
            if (Directory.Exists(sub))
                foreach (var nested in CaseFolders(sub)) yield return nested;
        }
        foreach (var nestedIndex in Directory.GetDirectories(folder).Where(d => File.Exists(Path.Combine(d, "index.json"))))
            foreach (var nested in CaseFolders(nestedIndex)) yield return nested;
    }

    static IEnumerable<GoldenResult> RunCase(string folder)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(folder));
        if (File.Exists(Path.Combine(folder, "cases.json"))) return TokenizerCases.Run(name, folder);
        var json = JsonConfig.Load(Path.Combine(folder, "case.json")).Root;
        return json.GetProperty("kind").GetString() switch
        {
            "model" => ModelCases.Run(name, folder, json),
            "scheduler" => SchedulerCases.Run(name, folder, json),
            var kind => throw new NotSupportedException($"case kind '{kind}' is not supported"),
        };
    }

    public static double Tolerance(JsonElement caseJson) =>
        caseJson.TryGetProperty("tolerance", out var t) && t.TryGetProperty("value", out var v) ? v.GetDouble() : 1e-4;
}
