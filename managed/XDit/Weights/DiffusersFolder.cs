namespace XDit.Weights;

/// <summary>
/// A diffusers pipeline saved with <c>save_pretrained</c>: a root folder with <c>model_index.json</c>
/// and one subfolder per component (<c>transformer/</c>, <c>vae/</c>, <c>text_encoder/</c>,
/// <c>scheduler/</c>, ...), each with its config and, for models, its weights.
/// </summary>
public sealed class DiffusersFolder
{
    DiffusersFolder(string root, ModelIndex index)
    {
        Root = root;
        Index = index;
    }

    public string Root { get; }

    public ModelIndex Index { get; }

    public static DiffusersFolder Open(string root)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        root = Path.GetFullPath(root);
        if (!Directory.Exists(root)) throw WeightErrors.Invalid(root, "no such folder");
        var index = Path.Combine(root, "model_index.json");
        if (!File.Exists(index)) throw WeightErrors.Invalid(root, "has no model_index.json (not a diffusers pipeline folder)");
        return new DiffusersFolder(root, ModelIndex.Load(index));
    }

    /// <summary>The subfolder of component <paramref name="name"/>, which the index must list and which
    /// must exist.</summary>
    public string Component(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!Index.Components.ContainsKey(name))
        {
            var why = Index.AbsentComponents.Contains(name)
                ? "is listed as absent ([null, null])"
                : $"is not a component (the pipeline has: {string.Join(", ", Index.Components.Keys.Order(StringComparer.Ordinal))})";
            throw WeightErrors.Invalid(Index.Path, $"\"{name}\" {why}");
        }
        if (name is "." or ".." || name.IndexOfAny(['/', '\\', '\0']) >= 0)
            throw WeightErrors.Invalid(Index.Path, $"component \"{name}\" is not a folder name");
        var folder = Path.Combine(Root, name);
        if (!Directory.Exists(folder)) throw WeightErrors.Invalid(folder, $"missing: the folder of component \"{name}\" listed in model_index.json");
        return folder;
    }

    /// <summary>The component's <c>config.json</c>, or <c>scheduler_config.json</c> for schedulers.</summary>
    public JsonConfig Config(string component)
    {
        var folder = Component(component);
        foreach (var file in new[] { "config.json", "scheduler_config.json" })
        {
            var path = Path.Combine(folder, file);
            if (File.Exists(path)) return JsonConfig.Load(path);
        }
        throw WeightErrors.Invalid(folder, "has neither config.json nor scheduler_config.json");
    }

    /// <summary>The component's weights: <c>model.safetensors</c>[.index.json] for transformers models
    /// (text encoders), <c>diffusion_pytorch_model.safetensors</c>[.index.json] otherwise.</summary>
    public Checkpoint OpenWeights(string component)
    {
        var folder = Component(component);
        var baseName = Index.Components[component].Library == "transformers" ? "model" : "diffusion_pytorch_model";
        return Checkpoint.Open(folder, baseName);
    }

    public override string ToString() => $"DiffusersFolder({Root}, {Index.ClassName})";
}
