using XDit.Native;
using XDit.Tensors;

namespace XDit.Schedulers;

/// <summary>The checks every <see cref="IScheduler.Step"/> makes before computing, with messages that
/// name the scheduler, the operand and its shape.</summary>
internal static class StepArguments
{
    public static void Check(string scheduler, int stepCount, Tensor modelOutput, int stepIndex, Tensor sample)
    {
        ArgumentNullException.ThrowIfNull(modelOutput);
        ArgumentNullException.ThrowIfNull(sample);
        CheckIndex(scheduler, stepCount, stepIndex);
        if (!Shapes.Equal(modelOutput.Shape, sample.Shape))
            throw new XDitException(XditStatus.InvalidArgument,
                $"{scheduler}.Step: modelOutput ({modelOutput.DType.Name()} {modelOutput.ShapeString}) and sample " +
                $"({sample.DType.Name()} {sample.ShapeString}) differ in shape");
        foreach (var (name, t) in new[] { ("modelOutput", modelOutput), ("sample", sample) })
            if (!t.DType.IsFloatingPoint())
                throw new XDitException(XditStatus.InvalidArgument,
                    $"{scheduler}.Step: {name} ({t.DType.Name()} {t.ShapeString}) must be f32, f16 or bf16");
    }

    public static void CheckIndex(string scheduler, int stepCount, int stepIndex)
    {
        if (stepCount == 0)
            throw new InvalidOperationException($"{scheduler}: no timesteps yet; call SetTimesteps first");
        if (stepIndex < 0 || stepIndex >= stepCount)
            throw new ArgumentOutOfRangeException(nameof(stepIndex), stepIndex,
                $"{scheduler}: step index {stepIndex} is outside the {stepCount} steps set by SetTimesteps (0 to {stepCount - 1})");
    }

    /// <summary>The noise of a stochastic step: required when the step draws any, of the sample's shape.</summary>
    public static void CheckNoise(string scheduler, int stepIndex, int draws, Tensor? noise, Tensor sample)
    {
        if (draws == 0) return;
        if (noise is null)
            throw new ArgumentNullException(nameof(noise),
                $"{scheduler}.Step: step {stepIndex} adds noise; pass a standard-normal tensor of the sample's shape {sample.ShapeString}");
        if (!Shapes.Equal(noise.Shape, sample.Shape) || !noise.DType.IsFloatingPoint())
            throw new XDitException(XditStatus.InvalidArgument,
                $"{scheduler}.Step: noise ({noise.DType.Name()} {noise.ShapeString}) must be a float tensor of the sample's shape " +
                $"({sample.DType.Name()} {sample.ShapeString})");
    }

    /// <summary>The error of a noiseless <see cref="IScheduler.Step"/> call on a step that adds noise.</summary>
    public static void RejectMissingNoise(string scheduler, int stepIndex, int draws)
    {
        if (draws > 0)
            throw new InvalidOperationException(
                $"{scheduler}.Step: step {stepIndex} adds noise; call Step(modelOutput, stepIndex, sample, noise, slice)");
    }

    public static void CheckStepCount(string scheduler, int steps)
    {
        if (steps < 1)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{scheduler}.SetTimesteps: at least one step is needed");
    }
}
