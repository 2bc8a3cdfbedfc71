using System.Text.Json;

namespace XDit.Schedulers;

/// <summary>
/// Reads the fields of a diffusers <c>scheduler_config.json</c> object for one scheduler class: a
/// missing field (or <c>null</c>, which diffusers writes for unset optionals) takes diffusers' default;
/// a field of the wrong type, or a value the engine does not know, is an <see cref="ArgumentException"/>
/// naming the class and the field; a known option the engine does not implement is a
/// <see cref="NotSupportedException"/>. Float fields also accept the strings <c>"Infinity"</c>,
/// <c>"-Infinity"</c> and <c>"NaN"</c>: Python writes those values as bare tokens that strict JSON
/// lacks, and the engine's config reader (and the golden case files) turn them into these strings.
/// Fields the engine does not use are ignored, as diffusers ignores unexpected ones.
/// </summary>
internal sealed class SchedulerConfig
{
    readonly JsonElement _config;
    readonly string _className;

    public SchedulerConfig(JsonElement config, string className)
    {
        if (config.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"a {className} config must be a JSON object, not {config.ValueKind}", nameof(config));
        _config = config;
        _className = className;
    }

    public int Int(string name, int fallback)
    {
        if (!TryGet(name, out var value)) return fallback;
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var result)) return result;
        throw Invalid(name, value, "an integer");
    }

    public double Double(string name, double fallback) => NullableDouble(name) ?? fallback;

    public double? NullableDouble(string name)
    {
        if (!TryGet(name, out var value)) return null;
        if (value.ValueKind == JsonValueKind.Number) return value.GetDouble();
        if (value.ValueKind == JsonValueKind.String)
            switch (value.GetString())
            {
                case "Infinity": return double.PositiveInfinity;
                case "-Infinity": return double.NegativeInfinity;
                case "NaN": return double.NaN;
            }
        throw Invalid(name, value, "a number (or \"Infinity\", \"-Infinity\", \"NaN\")");
    }

    public bool Bool(string name, bool fallback)
    {
        if (!TryGet(name, out var value)) return fallback;
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Invalid(name, value, "true or false"),
        };
    }

    public string? String(string name)
    {
        if (!TryGet(name, out var value)) return null;
        if (value.ValueKind == JsonValueKind.String) return value.GetString();
        throw Invalid(name, value, "a string");
    }

    public double[]? DoubleArray(string name)
    {
        if (!TryGet(name, out var value)) return null;
        if (value.ValueKind != JsonValueKind.Array) throw Invalid(name, value, "an array of numbers");
        return value.EnumerateArray()
            .Select(e => e.ValueKind == JsonValueKind.Number ? e.GetDouble() : throw Invalid(name, e, "an array of numbers"))
            .ToArray();
    }

    /// <summary>A string field mapped to a choice: <paramref name="choices"/> are the values the engine
    /// implements, <paramref name="unsupported"/> values diffusers knows that the engine rejects.</summary>
    public T Choice<T>(string name, T fallback, IReadOnlyDictionary<string, T> choices, params string[] unsupported)
    {
        var text = String(name);
        if (text is null) return fallback;
        if (choices.TryGetValue(text, out var choice)) return choice;
        if (unsupported.Contains(text)) throw NotSupported(name, $"\"{text}\"");
        throw new ArgumentException(
            $"{_className} config: {name} = \"{text}\" is not one of {string.Join(", ", choices.Keys.Select(k => $"\"{k}\""))}");
    }

    public BetaSchedule BetaSchedule(BetaSchedule fallback) =>
        Choice("beta_schedule", fallback, new Dictionary<string, BetaSchedule>
        {
            ["linear"] = Schedulers.BetaSchedule.Linear,
            ["scaled_linear"] = Schedulers.BetaSchedule.ScaledLinear,
            ["squaredcos_cap_v2"] = Schedulers.BetaSchedule.SquaredCosCapV2,
        });

    public PredictionType PredictionType(PredictionType fallback, params string[] unsupported) =>
        Choice("prediction_type", fallback, new Dictionary<string, PredictionType>
        {
            ["epsilon"] = Schedulers.PredictionType.Epsilon,
            ["v_prediction"] = Schedulers.PredictionType.VPrediction,
            ["sample"] = Schedulers.PredictionType.Sample,
        }, unsupported);

    public TimestepSpacing TimestepSpacing(TimestepSpacing fallback) =>
        Choice("timestep_spacing", fallback, new Dictionary<string, TimestepSpacing>
        {
            ["linspace"] = Schedulers.TimestepSpacing.Linspace,
            ["leading"] = Schedulers.TimestepSpacing.Leading,
            ["trailing"] = Schedulers.TimestepSpacing.Trailing,
        });

    /// <summary>Rejects a boolean option that selects a feature the engine does not implement.</summary>
    public void RejectIfTrue(string name)
    {
        if (Bool(name, false)) throw NotSupported(name, "true");
    }

    /// <summary>Checks a string option of which the engine implements only some values: a value among
    /// <paramref name="unsupported"/> is not supported, any other value outside
    /// <paramref name="implemented"/> is unknown.</summary>
    public void Require(string name, string[] implemented, params string[] unsupported) =>
        Choice(name, 0, implemented.ToDictionary(value => value, _ => 0), unsupported);

    public NotSupportedException NotSupported(string name, string value) =>
        new($"{_className} config: {name} = {value} is not supported by this engine");

    bool TryGet(string name, out JsonElement value) =>
        _config.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    ArgumentException Invalid(string name, JsonElement value, string expected) =>
        new($"{_className} config: {name} must be {expected}, not {value.GetRawText()}");
}
