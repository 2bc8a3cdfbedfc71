using System.Text.Json;
using XDit.Ops;
using XDit.Schedulers;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Cli.Golden;

/// <summary>Scheduler cases: the scheduler from the case's config, the golden loop with diffusers' fake
/// model <c>0.1·sample + sin(t/1000)</c> (in float32), the recorded noise for stochastic schedulers, and
/// the trajectory and timesteps compared with the stored ones.</summary>
internal static class SchedulerCases
{
    public static IEnumerable<GoldenResult> Run(string name, string folder, JsonElement caseJson)
    {
        var className = caseJson.GetProperty("scheduler_class").GetString();
        var config = JsonConfig.Load(Path.Combine(folder, "scheduler_config.json")).Root;
        using IScheduler scheduler = className switch
        {
            "DPMSolverMultistepScheduler" => DpmSolverMultistepScheduler.FromConfig(config),
            "DDIMScheduler" => DdimScheduler.FromConfig(config),
            "CogVideoXDDIMScheduler" => DdimScheduler.FromCogVideoXConfig(config),
            "DDPMScheduler" => DdpmScheduler.FromConfig(config),
            "CogVideoXDPMScheduler" => CogVideoXDpmScheduler.FromConfig(config),
            "FlowMatchEulerDiscreteScheduler" => FlowMatchEulerScheduler.FromConfig(config),
            _ => throw new NotSupportedException($"scheduler class {className} is not implemented"),
        };
        using var context = DeviceContext.Create(Device.Cpu);
        var files = new GoldenFiles(context);
        var inputs = Path.Combine(folder, "inputs.safetensors");
        var outputs = Path.Combine(folder, "outputs.safetensors");
        var setTimesteps = caseJson.GetProperty("set_timesteps");
        if (setTimesteps.TryGetProperty("sigmas", out var sigmas))
        {
            if (scheduler is not FlowMatchEulerScheduler flow)
                throw new NotSupportedException($"{className} does not take explicit sigmas");
            flow.SetTimesteps(ReadF64(inputs, sigmas.GetString()!["inputs:".Length..]),
                setTimesteps.TryGetProperty("mu", out var mu) ? mu.GetDouble() : null);
        }
        else scheduler.SetTimesteps(setTimesteps.GetProperty("num_inference_steps").GetInt32());

        var tolerance = GoldenRunner.Tolerance(caseJson);
        var results = new List<GoldenResult>();
        var expectedTimesteps = files.Has(outputs, "timesteps") ? files.F32(outputs, "timesteps") : null;
        if (expectedTimesteps is not null)
        {
            var mismatch = expectedTimesteps.Length != scheduler.Timesteps.Count ||
                           expectedTimesteps.Where((t, i) => (float)scheduler.Timesteps[i] != t).Any();
            results.Add(new GoldenResult(name, "timesteps", mismatch ? 1 : 0, tolerance, mismatch ? "timesteps differ" : null));
        }

        using var scope = new TensorScope();
        var shape = files.Shape(inputs, "sample0");
        var sample = Tensor.FromArray(context, files.F32(inputs, "sample0"), shape);
        var trajectory = new List<float>(sample.ToArray<float>());
        var noise = files.Has(inputs, "variance_noise") ? files.F32(inputs, "variance_noise") : null;
        var perStep = (int)Shapes.Product(shape);
        for (int i = 0; i < scheduler.Timesteps.Count; i++)
        {
            using var stepScope = new TensorScope();
            var t = (float)scheduler.Timesteps[i];
            var modelOutput = Elementwise.Affine(sample, 0.1, MathF.Sin(t / 1000f));
            if (scheduler is IStochasticScheduler stochastic && stochastic.NoiseDraws(i) > 0)
            {
                if (noise is null) throw new InvalidDataException($"{name}: the scheduler adds noise but the case has no variance_noise");
                var stepNoise = Tensor.FromArray(context, noise.AsSpan(i * perStep, perStep).ToArray(), shape);
                sample = stochastic.Step(modelOutput, i, sample, stepNoise).MoveToOuterScope();
            }
            else sample = scheduler.Step(modelOutput, i, sample).MoveToOuterScope();
            trajectory.AddRange(sample.ToArray<float>());
        }
        results.Add(new GoldenResult(name, "samples", Comparison.RelativeL2(trajectory.ToArray(), files.F32(outputs, "samples")), tolerance));
        return results;
    }

    /// <summary>An F64 input exactly (loading converts F64 to the engine's F32).</summary>
    static double[] ReadF64(string file, string name)
    {
        using var safetensors = SafetensorsFile.Open(file);
        var info = safetensors.Info(name);
        return info.DType == SafetensorsDType.F64
            ? System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(safetensors.Bytes(name)).ToArray()
            : throw new InvalidDataException($"{file}: {name} is {info.DType}, not F64");
    }
}
