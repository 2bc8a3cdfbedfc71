using System.Diagnostics;

namespace XDit.Pipelines;

/// <summary>Times the stages of one generation and reports progress: shared by every pipeline so that
/// timing tables and progress look the same whatever the model.</summary>
internal sealed class StageClock(IProgress<GenerationProgress>? progress, int steps)
{
    readonly Stopwatch _total = Stopwatch.StartNew();
    readonly Stopwatch _stage = Stopwatch.StartNew();
    readonly List<StageTiming> _timings = new();
    readonly List<string> _warnings = new();

    public IReadOnlyList<StageTiming> Timings => _timings;

    /// <summary>What the generation adjusted and carried on with (<see cref="GenerationResult.Warnings"/>).</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    public void Warn(string message) => _warnings.Add(message);

    public void Report(string stage, int step = 0) => progress?.Report(new GenerationProgress(stage, step, steps, _total.Elapsed));

    public void End(string stage)
    {
        _timings.Add(new StageTiming(stage, _stage.Elapsed));
        _stage.Restart();
    }

    /// <summary>A PipeFusion stage starts step <paramref name="index"/> (its steps overlap the other
    /// stages', so a step's time is from this stage's start of it to its start of the next).</summary>
    public void PipelinedStep(int index)
    {
        if (index > 0) End($"step {index}");
        Report("denoising", index + 1);
    }
}

/// <summary>The checks every text-to-image request passes before any work starts.</summary>
internal static class RequestValidation
{
    public static void Validate(GenerationRequest request, int sizeMultiple)
    {
        string? problem = request switch
        {
            { Prompts.Count: 0 } => "at least one prompt is needed",
            _ when request.Prompts.Any(string.IsNullOrWhiteSpace) => "prompts must not be empty",
            { Height: <= 0 } or { Width: <= 0 } => $"height and width must be positive, got {request.Height}x{request.Width}",
            _ when request.Height % sizeMultiple != 0 || request.Width % sizeMultiple != 0 =>
                $"height and width must be multiples of {sizeMultiple}, got {request.Height}x{request.Width}",
            { Steps: < 1 or > 1000 } => $"the step count must be in [1, 1000], got {request.Steps}",
            { ImagesPerPrompt: < 1 } => $"images per prompt must be >= 1, got {request.ImagesPerPrompt}",
            { MaxSequenceLength: < 0 } => $"max sequence length must be >= 0, got {request.MaxSequenceLength}",
            _ when !double.IsFinite(request.GuidanceScale) => "the guidance scale must be finite",
            _ => null,
        };
        if (problem is not null) throw new XDitException(Native.XditStatus.InvalidArgument, problem);
    }
}
