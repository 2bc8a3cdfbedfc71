namespace XDit.Cli;

/// <summary>A user mistake on the command line: printed as one line, exit code 2, never a stack trace.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>
/// Parsed <c>--name value</c>, <c>--name=value</c> and <c>--flag</c> arguments. Dashes and underscores in
/// names are the same (<c>--num-inference-steps</c> = <c>--num_inference_steps</c>, as xDiT accepts both
/// spellings of its argparse names); a name may repeat (several <c>--prompt</c>). Every argument must be
/// read by the command, so a misspelt option is an error instead of being ignored.
/// </summary>
public sealed class CommandLine
{
    readonly Dictionary<string, List<string?>> _values = new();
    readonly HashSet<string> _read = new();

    public CommandLine(IEnumerable<string> arguments)
    {
        string? pending = null;
        foreach (var argument in arguments)
        {
            if (argument.StartsWith("--", StringComparison.Ordinal) && argument.Length > 2)
            {
                if (pending is not null) Add(pending, null);
                var body = argument[2..];
                var equals = body.IndexOf('=');
                if (equals >= 0)
                {
                    Add(Normalize(body[..equals]), body[(equals + 1)..]);
                    pending = null;
                }
                else pending = Normalize(body);
            }
            else if (pending is not null)
            {
                Add(pending, argument);
                pending = null;
            }
            else throw new UsageException($"unexpected argument '{argument}' (options start with --)");
        }
        if (pending is not null) Add(pending, null);
    }

    static string Normalize(string name) => name.Replace('-', '_').ToLowerInvariant();

    void Add(string name, string? value)
    {
        if (!_values.TryGetValue(name, out var list)) _values[name] = list = new List<string?>();
        list.Add(value);
    }

    public bool Has(string name) => _values.ContainsKey(Normalize(name));

    public bool Flag(string name)
    {
        name = Normalize(name);
        if (!_values.TryGetValue(name, out var list)) return false;
        _read.Add(name);
        var value = list[^1];
        return value is null || value.ToLowerInvariant() is "true" or "1" or "yes"
            ? true
            : value.ToLowerInvariant() is "false" or "0" or "no" ? false : throw new UsageException($"--{name} takes no value or true/false, got '{value}'");
    }

    public string? String(string name, string? fallback = null)
    {
        var all = Strings(name);
        return all.Count == 0 ? fallback : all[^1];
    }

    public IReadOnlyList<string> Strings(string name)
    {
        name = Normalize(name);
        if (!_values.TryGetValue(name, out var list)) return [];
        _read.Add(name);
        return list.Select(v => v ?? throw new UsageException($"--{name} needs a value")).ToList();
    }

    public int Int(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var text = String(name);
        if (text is null) return fallback;
        if (!int.TryParse(text, out var value)) throw new UsageException($"--{Normalize(name)} must be an integer, got '{text}'");
        if (value < min || value > max) throw new UsageException($"--{Normalize(name)} must be in [{min}, {max}], got {value}");
        return value;
    }

    public double Double(string name, double fallback)
    {
        var text = String(name);
        if (text is null) return fallback;
        return double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value : throw new UsageException($"--{Normalize(name)} must be a number, got '{text}'");
    }

    public IReadOnlyList<int> Ints(string name) =>
        Strings(name).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(s => int.TryParse(s, out var v) ? v : throw new UsageException($"--{Normalize(name)} takes integers, got '{s}'")).ToList();

    /// <summary>Fails on every option the command did not read.</summary>
    public void RejectUnknown(string command)
    {
        var unknown = _values.Keys.Where(k => !_read.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new UsageException($"unknown option{(unknown.Count > 1 ? "s" : "")} for '{command}': {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}
