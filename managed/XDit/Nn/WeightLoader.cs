using System.Text;
using XDit.Native;

namespace XDit.Nn;

/// <summary>Loads a module tree from a tensor source. Every missing, unexpected or mis-shaped tensor is
/// found before anything is loaded and reported together in one <see cref="XDitException"/>.</summary>
public static class WeightLoader
{
    const int ListedPerKind = 20;

    /// <param name="ignore">Names the source may hold that the tree does not use (buffers diffusers
    /// saves but recomputes, for instance).</param>
    public static void Load(Module root, ITensorSource source, DeviceContext context, DType dtype,
        Func<string, bool>? ignore = null, string sourceName = "checkpoint")
    {
        var expected = root.NamedParameters().ToList();
        var expectedNames = expected.Select(e => e.Path).ToHashSet();
        var available = source.Names.ToHashSet();
        var missing = expected.Where(e => !available.Contains(e.Path)).Select(e => e.Path).ToList();
        var unexpected = available.Where(n => !expectedNames.Contains(n) && !(ignore?.Invoke(n) ?? false)).Order().ToList();
        var misshaped = expected.Where(e => available.Contains(e.Path) && !source.Shape(e.Path).SequenceEqual(e.Parameter.Shape))
            .Select(e => $"{e.Path}: {Format(source.Shape(e.Path))} in the {sourceName}, {Format(e.Parameter.Shape)} expected")
            .ToList();
        if (missing.Count + unexpected.Count + misshaped.Count > 0)
        {
            var report = new StringBuilder($"the {sourceName} does not match the model ({root.GetType().Name}):");
            Append(report, "missing", missing);
            Append(report, "unexpected", unexpected);
            Append(report, "wrong shape", misshaped);
            throw new XDitException(XditStatus.InvalidArgument, report.ToString());
        }
        foreach (var (path, parameter) in expected) parameter.Assign(source.Load(path, context, dtype));
    }

    static void Append(StringBuilder report, string kind, List<string> names)
    {
        if (names.Count == 0) return;
        report.Append($"\n  {names.Count} {kind}: ").Append(string.Join(", ", names.Take(ListedPerKind)));
        if (names.Count > ListedPerKind) report.Append($", … ({names.Count - ListedPerKind} more)");
    }

    static string Format(IEnumerable<long> shape) => "[" + string.Join(", ", shape) + "]";
}
