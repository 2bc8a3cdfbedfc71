using System.Text.Json;

namespace XDit.Weights;

/// <summary>
/// A diffusers pipeline's <c>model_index.json</c>: the pipeline class, the diffusers version that wrote
/// it, and its components, each <c>name: [library, class]</c>. <c>[null, null]</c> marks an optional
/// component the pipeline was saved without (<see cref="AbsentComponents"/>). Keys starting with
/// <c>_</c> and values that are not arrays are pipeline settings (e.g.
/// <c>"force_zeros_for_empty_prompt": true</c>), read through <see cref="Config"/>.
/// </summary>
public sealed class ModelIndex
{
    ModelIndex(JsonConfig config, string className, string? diffusersVersion,
        IReadOnlyDictionary<string, ModelComponent> components, IReadOnlyList<string> absent)
    {
        Config = config;
        ClassName = className;
        DiffusersVersion = diffusersVersion;
        Components = components;
        AbsentComponents = absent;
    }

    public string Path => Config.Path;

    /// <summary>The whole file, for pipeline settings.</summary>
    public JsonConfig Config { get; }

    /// <summary><c>_class_name</c>, e.g. <c>PixArtAlphaPipeline</c>.</summary>
    public string ClassName { get; }

    /// <summary><c>_diffusers_version</c>, when present.</summary>
    public string? DiffusersVersion { get; }

    /// <summary>The components present, by name (= subfolder).</summary>
    public IReadOnlyDictionary<string, ModelComponent> Components { get; }

    /// <summary>Components listed as <c>[null, null]</c>.</summary>
    public IReadOnlyList<string> AbsentComponents { get; }

    public static ModelIndex Load(string path) => FromConfig(JsonConfig.Load(path));

    public static ModelIndex FromConfig(JsonConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var className = config.String("_class_name")
            ?? throw WeightErrors.Invalid(config.Path, "has no \"_class_name\" (the pipeline class)");
        var components = new Dictionary<string, ModelComponent>(StringComparer.Ordinal);
        var absent = new List<string>();
        foreach (var entry in config.Root.EnumerateObject())
        {
            if (entry.Name.StartsWith('_') || entry.Value.ValueKind != JsonValueKind.Array) continue;
            var pair = entry.Value.EnumerateArray().ToArray();
            if (pair.Length == 2 && pair.All(e => e.ValueKind == JsonValueKind.Null))
                absent.Add(entry.Name);
            else if (pair.Length == 2 && pair.All(e => e.ValueKind == JsonValueKind.String))
                components.Add(entry.Name, new ModelComponent(entry.Name, pair[0].GetString()!, pair[1].GetString()!));
            else
                throw WeightErrors.Invalid(config.Path,
                    $"component \"{entry.Name}\" is {entry.Value.GetRawText()}, expected [library, class] or [null, null]");
        }
        return new ModelIndex(config, className, config.String("_diffusers_version"), components, absent);
    }
}
