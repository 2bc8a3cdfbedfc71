using System.Text.Json;
using XDit.Pipelines;

namespace XDit.Server;

/// <summary>
/// The body of <c>POST /generate</c>: xDiT's request fields (<c>prompt</c>, <c>num_inference_steps</c>,
/// <c>seed</c>, <c>cfg</c>, <c>height</c>, <c>width</c>, <c>save_disk_path</c>) plus <c>negative_prompt</c>,
/// <c>num_images</c> and <c>output</c> (png | base64 | path). Unknown fields and wrong types are
/// rejected with the field's name.
/// </summary>
public sealed record GenerateBody(GenerationRequest Request, string Output, string? SaveDiskPath)
{
    static readonly HashSet<string> Known =
        ["prompt", "negative_prompt", "num_inference_steps", "seed", "cfg", "height", "width", "save_disk_path", "num_images", "output"];

    /// <summary>Parses and validates; throws <see cref="BadRequestException"/> with the reason.</summary>
    /// <param name="defaults">The values a request does not give (the server's model defaults).</param>
    public static GenerateBody Parse(JsonElement json, IPipeline pipeline, ServerOptions options, GenerationRequest defaults)
    {
        if (json.ValueKind != JsonValueKind.Object) throw new BadRequestException("the body must be a JSON object");
        foreach (var property in json.EnumerateObject())
            if (!Known.Contains(property.Name)) throw new BadRequestException($"unknown field '{property.Name}'");

        string[] prompts = json.TryGetProperty("prompt", out var p) ? p.ValueKind switch
        {
            JsonValueKind.String => [p.GetString()!],
            JsonValueKind.Array => p.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw new BadRequestException("prompt must be a string or a list of strings")).ToArray(),
            _ => throw new BadRequestException("prompt must be a string or a list of strings"),
        } : throw new BadRequestException("prompt is required");
        if (prompts.Length == 0 || prompts.Any(string.IsNullOrWhiteSpace)) throw new BadRequestException("prompt must not be empty");
        if (prompts.Any(x => x.Length > 10_000)) throw new BadRequestException("prompt is longer than 10000 characters");

        int Int(string name, int fallback, int min, int max)
        {
            if (!json.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var i)) throw new BadRequestException($"{name} must be an integer");
            if (i < min || i > max) throw new BadRequestException($"{name} must be in [{min}, {max}], got {i}");
            return i;
        }
        string? Text(string name)
        {
            if (!json.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new BadRequestException($"{name} must be a string");
        }

        var size = pipeline.DefaultImageSize;
        var height = Int("height", size, 1, 4096);
        var width = Int("width", size, 1, 4096);
        var multiple = pipeline.SizeMultiple;
        if (height % multiple != 0 || width % multiple != 0)
            throw new BadRequestException($"height and width must be multiples of {multiple}, got {height}x{width}");
        var images = Int("num_images", 1, 1, options.MaxImagesPerRequest);
        if (prompts.Length * images > options.MaxImagesPerRequest)
            throw new BadRequestException($"at most {options.MaxImagesPerRequest} images per request");
        var guidance = defaults.GuidanceScale;
        if (json.TryGetProperty("cfg", out var cfg) && cfg.ValueKind != JsonValueKind.Null)
        {
            if (cfg.ValueKind != JsonValueKind.Number || !double.IsFinite(cfg.GetDouble()) || cfg.GetDouble() < 0 || cfg.GetDouble() > 100)
                throw new BadRequestException("cfg must be a number in [0, 100]");
            guidance = cfg.GetDouble();
        }
        var output = Text("output") ?? "png";
        if (output is not ("png" or "base64" or "path")) throw new BadRequestException($"output must be png, base64 or path, got '{output}'");
        var request = defaults with
        {
            Prompts = prompts,
            NegativePrompt = Text("negative_prompt") ?? "",
            Steps = Int("num_inference_steps", defaults.Steps, 1, 200),
            Seed = (ulong)Int("seed", (int)Math.Min(defaults.Seed, int.MaxValue), 0, int.MaxValue),
            GuidanceScale = guidance,
            Height = height,
            Width = width,
            ImagesPerPrompt = images,
        };
        return new GenerateBody(request, output, Text("save_disk_path"));
    }
}

/// <summary>A client mistake, answered with 400 and its message.</summary>
public sealed class BadRequestException(string message) : Exception(message);
