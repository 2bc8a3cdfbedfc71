using System.Text.Json;
using System.Text.Json.Nodes;
using XDit.Nn;
using XDit.Text;
using XDit.Weights;

namespace XDit.Pipelines;

/// <summary>
/// The parts of a random-weight diffusers folder that every named architecture writes the same way:
/// JSON files as <c>save_pretrained</c> leaves them, a model component (its config and its weights from
/// <see cref="RandomWeights"/>, sharded with an index above a size limit as diffusers and transformers
/// shard), and the tokenizers with made vocabularies. Config keys starting with <c>_xdit_</c> carry what
/// only the writer needs (a T5 tokenizer's extra ids) and are left out of the written configs.
/// </summary>
internal static class RandomFolderWriter
{
    /// <summary>The diffusers version the written configs name (that of the golden references).</summary>
    public const string DiffusersVersion = "0.32.2";

    /// <summary><c>model_index.json</c>: the pipeline class and each component as
    /// <c>name: [library, class]</c>.</summary>
    public static void WriteModelIndex(string folder, string pipelineClass,
        params (string Name, string Library, string Class)[] components)
    {
        var index = new JsonObject { ["_class_name"] = pipelineClass, ["_diffusers_version"] = DiffusersVersion };
        foreach (var (name, library, className) in components.OrderBy(c => c.Name, StringComparer.Ordinal))
            index[name] = new JsonArray(library, className);
        WriteJson(Path.Combine(folder, "model_index.json"), index);
    }

    /// <summary>Writes <paramref name="module"/>'s config and random weights (in <paramref name="dtype"/>,
    /// from <paramref name="seed"/>) into <c>folder/component</c>: one <c>{weightsBaseName}.safetensors</c>,
    /// or shards and an index when the weights exceed <paramref name="maxShardBytes"/>.</summary>
    public static void WriteModel(string folder, string component, JsonObject config, Module module,
        string weightsBaseName, DeviceContext context, DType dtype, ulong seed, long maxShardBytes)
    {
        var directory = Directory.CreateDirectory(Path.Combine(folder, component)).FullName;
        WriteJson(Path.Combine(directory, "config.json"), Published(config));
        RandomWeights.Initialize(module, context, dtype, seed);
        var parameters = module.NamedParameters().ToList();
        var totalBytes = parameters.Sum(p => p.Parameter.Value.NumElements * p.Parameter.Value.DType.ElementSize());
        if (totalBytes > maxShardBytes)
        {
            var writer = new ShardedSafetensorsWriter(weightsBaseName, maxShardBytes);
            foreach (var (path, parameter) in parameters) writer.Add(path, parameter.Value);
            writer.Save(directory);
        }
        else
        {
            var writer = new SafetensorsWriter();
            foreach (var (path, parameter) in parameters) writer.Add(path, parameter.Value);
            writer.Save(Path.Combine(directory, weightsBaseName + ".safetensors"));
        }
    }

    /// <summary><c>folder/scheduler/scheduler_config.json</c>.</summary>
    public static void WriteScheduler(string folder, JsonObject config)
    {
        var directory = Directory.CreateDirectory(Path.Combine(folder, "scheduler")).FullName;
        WriteJson(Path.Combine(directory, "scheduler_config.json"), config);
    }

    /// <summary>A CLIP tokenizer (<see cref="ClipVocabularyWriter"/>) covering the ids of
    /// <paramref name="textEncoder"/>'s vocabulary.</summary>
    public static void WriteClipTokenizer(string folder, string component, JsonObject textEncoder, string padToken) =>
        ClipVocabularyWriter.WriteFolder(Path.Combine(folder, component), Int(textEncoder, "vocab_size"), padToken);

    /// <summary>
    /// A T5 tokenizer for <paramref name="textEncoder"/>: a SentencePiece unigram model with the tiny English
    /// vocabulary, padded with unused pieces up to the encoder's vocabulary less its extra ids and the
    /// three specials (as T5 v1.1's 32000 pieces + 100 extra ids + 28 unused rows make 32128), and the
    /// config of the released T5 tokenizers (<c>legacy</c>, <c>model_max_length</c> 512 unless the
    /// pipeline's checkpoints name another).
    /// </summary>
    public static void WriteT5Tokenizer(string folder, string component, JsonObject textEncoder, int modelMaxLength = 512)
    {
        var directory = Directory.CreateDirectory(Path.Combine(folder, component)).FullName;
        var extraIds = textEncoder["_xdit_extra_ids"]?.GetValue<int>() ?? 0;
        var pieces = SentencePieceModelWriter.TinyEnglishVocabulary().ToList();
        for (int i = pieces.Count; i < Int(textEncoder, "vocab_size") - extraIds - 3; i++) pieces.Add(($"▁w{i}", -20f));
        File.WriteAllBytes(Path.Combine(directory, "spiece.model"), SentencePieceModelWriter.Unigram(pieces));
        WriteJson(Path.Combine(directory, "tokenizer_config.json"), new JsonObject
        {
            ["tokenizer_class"] = "T5Tokenizer", ["legacy"] = true, ["extra_ids"] = extraIds, ["model_max_length"] = modelMaxLength,
            ["eos_token"] = "</s>", ["pad_token"] = "<pad>", ["unk_token"] = "<unk>",
        });
        WriteJson(Path.Combine(directory, "special_tokens_map.json"), new JsonObject
        {
            ["eos_token"] = "</s>", ["pad_token"] = "<pad>", ["unk_token"] = "<unk>",
        });
    }

    /// <summary>The config as the engine's config readers take it.</summary>
    public static JsonElement ToElement(JsonObject json) => JsonDocument.Parse(Published(json).ToJsonString()).RootElement;

    public static int Int(JsonObject json, string key) => json[key]!.GetValue<int>();

    static JsonObject Published(JsonObject config)
    {
        var copy = (JsonObject)config.DeepClone();
        foreach (var key in copy.Select(p => p.Key).Where(k => k.StartsWith("_xdit_", StringComparison.Ordinal)).ToList()) copy.Remove(key);
        return copy;
    }

    static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}
