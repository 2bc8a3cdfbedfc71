using System.Text.Json;
using XDit.Models.Clip;
using XDit.Models.Flux;
using XDit.Models.PixArt;
using XDit.Models.SD3;
using XDit.Models.T5;
using XDit.Models.Vae;
using XDit.Nn;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Cli.Golden;

/// <summary>Model cases: build the class named in case.json from the folder's config, load its weights,
/// make the call(s) with the case's inputs, compare every output the case stores that the call produced.</summary>
internal static class ModelCases
{
    public static IEnumerable<GoldenResult> Run(string name, string folder, JsonElement caseJson)
    {
        var modelClass = caseJson.GetProperty("model_class").GetString();
        using var context = DeviceContext.Create(Device.Cpu);
        var files = new GoldenFiles(context);
        var inputs = Path.Combine(folder, "inputs.safetensors");
        var config = JsonConfig.Load(Path.Combine(folder, "config.json")).Root;
        var produced = modelClass switch
        {
            "PixArtTransformer2DModel" => PixArt(folder, config, context, files, inputs),
            "AutoencoderKL" => Vae(folder, config, context, files, inputs),
            "T5EncoderModel" => T5(folder, config, context, files, inputs, caseJson),
            "SD3Transformer2DModel" => SD3(folder, config, context, files, inputs),
            "FluxTransformer2DModel" => Flux(folder, config, context, files, inputs),
            "CLIPTextModel" => Clip(folder, config, context, files, inputs, caseJson, withProjection: false),
            "CLIPTextModelWithProjection" => Clip(folder, config, context, files, inputs, caseJson, withProjection: true),
            _ => throw new NotSupportedException($"model class {modelClass} is not implemented yet"),
        };
        var outputs = Path.Combine(folder, "outputs.safetensors");
        var tolerance = GoldenRunner.Tolerance(caseJson);
        var results = new List<GoldenResult>();
        foreach (var (output, values) in produced)
            if (files.Has(outputs, output))
                results.Add(new GoldenResult(name, output, Comparison.RelativeL2(values, files.F32(outputs, output)), tolerance));
        return results;
    }

    static T Load<T>(T module, string folder, DeviceContext context) where T : Module
    {
        var baseName = File.Exists(Path.Combine(folder, "model.safetensors")) || File.Exists(Path.Combine(folder, "model.safetensors.index.json"))
            ? "model" : "diffusion_pytorch_model";
        using var checkpoint = Checkpoint.Open(folder, baseName);
        WeightLoader.Load(module, checkpoint, context, DType.F32);
        return module;
    }

    static Tensor Input(GoldenFiles files, string inputs, string name, DeviceContext context) =>
        Tensor.FromArray(context, files.F32(inputs, name), files.Shape(inputs, name));

    static Dictionary<string, float[]> PixArt(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs)
    {
        using var model = Load(new PixArtTransformer2DModel(PixArtConfig.FromJson(config)), folder, context);
        using var scope = new TensorScope();
        var mask = files.F32(inputs, "encoder_attention_mask");
        var keep = Tensor.FromArray(context, mask.Select(m => m > 0.5f).ToArray(), files.Shape(inputs, "encoder_attention_mask"));
        var sizes = model.Config.UseAdditionalConditions;
        var sample = model.Forward(Input(files, inputs, "hidden_states", context), files.F32(inputs, "timestep"),
            Input(files, inputs, "encoder_hidden_states", context), keep,
            sizes ? files.F32(inputs, "resolution") : default, sizes ? files.F32(inputs, "aspect_ratio") : default);
        var noise = sample.Narrow(1, 0, model.Config.InChannels).Contiguous();
        return new() { ["sample"] = sample.ToArray<float>(), ["noise_pred_pipeline"] = noise.ToArray<float>() };
    }

    static Dictionary<string, float[]> Vae(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs)
    {
        using var vae = Load(new AutoencoderKL(AutoencoderKLConfig.FromJson(config)), folder, context);
        using var scope = new TensorScope();
        var result = new Dictionary<string, float[]> { ["decoded"] = vae.Decode(Input(files, inputs, "latents", context)).ToArray<float>() };
        if (files.Has(inputs, "image"))
        {
            var (mean, logVariance) = vae.Encode(Input(files, inputs, "image", context));
            result["posterior_mean"] = mean.ToArray<float>();
            result["posterior_logvar"] = logVariance.ToArray<float>();
        }
        return result;
    }

    static Dictionary<string, float[]> T5(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs,
        JsonElement caseJson)
    {
        using var model = new T5EncoderModel(T5Config.FromJson(config));
        using (var checkpoint = Checkpoint.Open(folder, "model")) model.LoadWeights(checkpoint, context, DType.F32);
        var ids = files.I64(inputs, "input_ids");
        var batch = (int)files.Shape(inputs, "input_ids")[0];
        var result = new Dictionary<string, float[]>();
        foreach (var call in caseJson.GetProperty("calls").EnumerateArray())
        {
            var kwargs = call.GetProperty("kwargs");
            var mask = kwargs.TryGetProperty("attention_mask", out _) ? files.I64(inputs, "attention_mask") : null;
            using var hidden = model.Forward(ids, mask, batch, context);
            foreach (var output in call.GetProperty("outputs").EnumerateObject()) result[output.Name] = hidden.ToArray<float>();
        }
        return result;
    }

    static Dictionary<string, float[]> SD3(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs)
    {
        using var model = Load(new SD3Transformer2DModel(SD3Config.FromJson(config)), folder, context);
        using var scope = new TensorScope();
        var sample = model.Forward(Input(files, inputs, "hidden_states", context), files.F32(inputs, "timestep"),
            Input(files, inputs, "encoder_hidden_states", context), Input(files, inputs, "pooled_projections", context));
        return new() { ["sample"] = sample.ToArray<float>() };
    }

    static Dictionary<string, float[]> Flux(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs)
    {
        using var model = Load(new FluxTransformer2DModel(FluxConfig.FromJson(config)), folder, context);
        using var scope = new TensorScope();
        var sample = model.Forward(Input(files, inputs, "hidden_states", context), Input(files, inputs, "encoder_hidden_states", context),
            Input(files, inputs, "pooled_projections", context), files.F32(inputs, "timestep"),
            files.Has(inputs, "guidance") ? files.F32(inputs, "guidance") : null, files.F32(inputs, "img_ids"), files.F32(inputs, "txt_ids"));
        return new() { ["sample"] = sample.ToArray<float>() };
    }

    /// <summary>CLIP outputs by the names the case gives them: last_hidden_state, pooler_output,
    /// text_embeds, hidden_states_N and hidden_states_penultimate.</summary>
    static Dictionary<string, float[]> Clip(string folder, JsonElement config, DeviceContext context, GoldenFiles files, string inputs,
        JsonElement caseJson, bool withProjection)
    {
        using var model = new ClipTextModel(ClipTextConfig.FromJson(config), withProjection);
        using (var checkpoint = Checkpoint.Open(folder, "model")) model.LoadWeights(checkpoint, context, DType.F32);
        var ids = files.I64(inputs, "input_ids");
        using var output = model.Forward(ids, (int)files.Shape(inputs, "input_ids")[0], context, outputHiddenStates: true);
        var result = new Dictionary<string, float[]>
        {
            ["last_hidden_state"] = output.LastHiddenState.ToArray<float>(),
            ["pooler_output"] = output.PooledOutput.ToArray<float>(),
            ["hidden_states_penultimate"] = output.HiddenStates[^2].ToArray<float>(),
        };
        if (output.TextEmbeds is not null) result["text_embeds"] = output.TextEmbeds.ToArray<float>();
        for (int i = 0; i < output.HiddenStates.Count; i++) result[$"hidden_states_{i}"] = output.HiddenStates[i].ToArray<float>();
        return result;
    }
}
