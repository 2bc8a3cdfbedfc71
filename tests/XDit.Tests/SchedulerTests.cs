using System.Text.Json;
using System.Text.RegularExpressions;
using XDit.Native;
using XDit.Ops;
using XDit.Rng;
using XDit.Schedulers;
using XDit.Tensors;
using XDit.Weights;

namespace XDit.Tests;

/// <summary>
/// The schedulers against the trajectories diffusers 0.32.2 recorded in the golden scheduler cases
/// (every case of <c>index.json</c> whose class the engine implements, so new cases run without code
/// changes), against fp64 loops written here from the published formulas for the options the golden
/// cases do not cover, and for their contracts: sliced (PipeFusion) stepping equals whole-latent
/// stepping bit for bit, history is freed, bad configs and calls fail clearly.
/// </summary>
[TestFixture]
public class SchedulerTests
{
    // ---- golden cases ---------------------------------------------------------------------------

    /// <summary>The scheduler cases of the golden index (one placeholder, reported as skipped, when the
    /// golden data is not installed).</summary>
    static IEnumerable<TestCaseData> GoldenCases()
    {
        var index = Path.Combine(AbiTests.RepositoryRoot(), "..", "shared", "golden", "index.json");
        if (!File.Exists(index))
        {
            yield return new TestCaseData("golden-data-not-installed");
            yield break;
        }
        using var json = JsonDocument.Parse(File.ReadAllText(index));
        foreach (var entry in json.RootElement.GetProperty("cases").EnumerateArray())
            if (entry.GetProperty("kind").GetString() == "scheduler")
                yield return new TestCaseData(entry.GetProperty("case").GetString());
    }

    /// <summary>The golden cases of stochastic schedulers (those that record their noise).</summary>
    static IEnumerable<TestCaseData> StochasticGoldenCases() =>
        GoldenCases().Where(c =>
        {
            var file = Path.Combine(AbiTests.RepositoryRoot(), "..", "shared", "golden", (string)c.Arguments[0]!, "case.json");
            return !File.Exists(file) || File.ReadAllText(file).Contains("\"variance_noise\"");
        });

    [TestCaseSource(nameof(GoldenCases))]
    public void TrajectoryMatchesDiffusers(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var scheduler = golden.CreateScheduler();
        using var context = Contexts.Cpu();
        var errors = RunGoldenLoop(golden, scheduler, context);
        TestContext.Out.WriteLine($"{caseName}: worst step {errors.Max(e => e.Sample):E2} (samples), {errors.Max(e => e.Model):E2} (model outputs)");

        // The model outputs are the fake model's at our own samples: they check the timesteps the
        // model sees and the samples it is given.
        Assert.That(errors.Max(e => e.Model), Is.LessThan(golden.Tolerance), $"model outputs: {Describe(errors.Select(e => e.Model))}");
        Assert.That(errors.Max(e => e.Sample), Is.LessThan(golden.Tolerance), $"samples: {Describe(errors.Select(e => e.Sample))}");
    }

    [TestCaseSource(nameof(GoldenCases))]
    public void TimestepsAndSigmasMatchDiffusers(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var scheduler = golden.CreateScheduler();
        var outputs = golden.Outputs;

        if (outputs["timesteps"].DType == "I64")
        {
            Assert.That(scheduler.Timesteps.All(t => t == Math.Round(t)), "integer timesteps");
            Assert.That(scheduler.Timesteps.Select(t => (long)t), Is.EqualTo(outputs.I64("timesteps")), "timesteps");
        }
        else
        {
            Assert.That(scheduler.Timesteps.Select(t => (float)t), Is.EqualTo(outputs.F32("timesteps")), "timesteps");
        }

        var sigmas = (scheduler as DpmSolverMultistepScheduler)?.Sigmas ?? (scheduler as FlowMatchEulerScheduler)?.Sigmas;
        if (outputs.Names.Contains("sigmas"))
            Assert.That(sigmas!.Select(s => (float)s), Is.EqualTo(outputs.F32("sigmas")), "sigmas");

        // The float32 tables are built as torch builds them and match bit for bit; CogVideoX's float64
        // ones to rounding.
        var alphasCumprod = scheduler switch
        {
            DpmSolverMultistepScheduler dpm => dpm.AlphasCumprod,
            DdimScheduler ddim => ddim.AlphasCumprod,
            DdpmScheduler ddpm => ddpm.AlphasCumprod,
            CogVideoXDpmScheduler cogVideoX => cogVideoX.AlphasCumprod,
            _ => null,
        };
        if (outputs.Names.Contains("alphas_cumprod") && outputs["alphas_cumprod"].DType == "F32")
            Assert.That(alphasCumprod!.Select(a => (float)a), Is.EqualTo(outputs.F32("alphas_cumprod")), "alphas_cumprod");
        if (outputs.Names.Contains("alphas_cumprod") && outputs["alphas_cumprod"].DType == "F64")
            Assert.That(alphasCumprod, Is.EqualTo(outputs.F64("alphas_cumprod")).Within(1e-12), "alphas_cumprod");
    }

    [TestCaseSource(nameof(GoldenCases))]
    public void SlicedStepsEqualWholeLatentSteps(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var whole = golden.CreateScheduler();
        using var sliced = golden.CreateScheduler();
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var shape = golden.LatentShape;
        var rows = shape[^2];
        // Uneven row bands (PipeFusion's patches along the latent height, or along the tokens of Flux's
        // packed latent), stepped as strided views, in reverse order on odd steps.
        long[] bands = rows >= 3 ? [rows / 3, rows / 3, rows - 2 * (rows / 3)] : [1, rows - 1];

        var x = Tensor.FromArray(context, golden.Inputs.F32("sample0"), shape);
        var y = x.Clone();
        for (int i = 0; i < whole.Timesteps.Count; i++)
        {
            using var modelOutput = FakeModel(x, whole.Timesteps[i]);
            var noise = golden.Noise(context, i);
            var nextWhole = Step(whole, modelOutput, i, x, noise);

            var nextSliced = Tensor.Empty(context, DType.F32, shape);
            var order = Enumerable.Range(0, bands.Length);
            foreach (var band in i % 2 == 0 ? order : order.Reverse())
            {
                var start = bands.Take(band).Sum();
                using var output = modelOutput.Narrow(-2, start, bands[band]);
                using var sample = y.Narrow(-2, start, bands[band]);
                using var noiseBand = noise?.Narrow(-2, start, bands[band]);
                using var stepped = Step(sliced, output, i, sample, noiseBand, band);
                using var target = nextSliced.Narrow(-2, start, bands[band]);
                Elementwise.Copy(stepped, target);
            }

            Assert.That(Bits(nextSliced), Is.EqualTo(Bits(nextWhole)), $"step {i}: sliced and whole-latent results differ");
            (x, y) = (nextWhole, nextSliced);
        }
    }

    [TestCaseSource(nameof(GoldenCases))]
    [Category("GPU")]
    public void TrajectoryOnCudaMatchesDiffusers(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var scheduler = golden.CreateScheduler();
        using var cuda = Contexts.CudaOrIgnore();
        var errors = RunGoldenLoop(golden, scheduler, cuda);
        Assert.That(errors.Max(e => e.Sample), Is.LessThan(golden.Tolerance), $"samples: {Describe(errors.Select(e => e.Sample))}");
    }

    /// <summary>The saved <c>scheduler_config.json</c> (Python's JSON: the DPM-Solver ones hold a bare
    /// <c>-Infinity</c>), read as pipelines read it, gives the scheduler the case.json config gives.</summary>
    [TestCaseSource(nameof(GoldenCases))]
    public void SavedSchedulerConfigGivesTheSameScheduler(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var fromCase = golden.CreateScheduler();
        var saved = JsonConfig.Load(Path.Combine(GoldenTensors.CaseFolder(caseName), "scheduler_config.json"));
        Assert.That(saved.String("_class_name"), Is.EqualTo(golden.Case.GetProperty("scheduler_class").GetString()));
        using var fromFile = golden.CreateScheduler(saved.Root);
        static object OptionsOf(IScheduler scheduler) => scheduler switch
        {
            DpmSolverMultistepScheduler dpm => dpm.Options,
            DdimScheduler ddim => ddim.Options,
            DdpmScheduler ddpm => ddpm.Options,
            CogVideoXDpmScheduler cogVideoX => cogVideoX.Options,
            FlowMatchEulerScheduler flow => flow.Options,
            _ => throw new AssertionException($"no options for {scheduler}"),
        };
        Assert.That(OptionsOf(fromFile), Is.EqualTo(OptionsOf(fromCase)));
        Assert.That(fromFile.Timesteps, Is.EqualTo(fromCase.Timesteps));
    }

    [TestCase(256, 256, 256)]
    [TestCase(1024, 1024, 4096)]
    [TestCase(768, 1360, 4080)]
    public void FluxMuIsLinearInTheImageTokens(int height, int width, int tokens)
    {
        var imageSeqLen = height / 16 * (width / 16);
        Assert.That(imageSeqLen, Is.EqualTo(tokens));
        var expected = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096.0 - 256);
        Assert.That(FlowMatchEulerScheduler.FluxMu(imageSeqLen, 256, 4096, 0.5, 1.15), Is.EqualTo(expected).Within(1e-12));
        using var scheduler = new FlowMatchEulerScheduler(new FlowMatchEulerOptions { UseDynamicShifting = true });
        Assert.That(scheduler.MuFor(imageSeqLen), Is.EqualTo(expected).Within(1e-12));
    }

    /// <summary>A pipeline that draws <see cref="IStochasticScheduler.NoiseDraws"/> tensors per step from a
    /// generator seeded like diffusers' and keeps the last one gets exactly the noise diffusers used.</summary>
    [TestCaseSource(nameof(StochasticGoldenCases))]
    public void NoiseDrawsReproduceTheNoiseDiffusersUsed(string caseName)
    {
        var golden = GoldenCase.Load(caseName);
        using var stochastic = (IStochasticScheduler)golden.CreateScheduler();
        var noise = golden.Case.GetProperty("noise");
        var seed = ulong.Parse(Regex.Match(noise.GetProperty("generator").GetString()!, @"manual_seed\((\d+)\)").Groups[1].Value);
        if (noise.TryGetProperty("draws_per_step", out var draws))
            Assert.That(Enumerable.Range(0, stochastic.Timesteps.Count).Select(stochastic.NoiseDraws),
                Is.EqualTo(draws.EnumerateArray().Select(d => d.GetInt32())), "draws per step");

        var recorded = golden.Inputs.F32("variance_noise");
        var shape = golden.LatentShape;
        var size = (int)Shapes.Product(shape);
        var generator = new TorchGenerator(seed);
        for (int i = 0; i < stochastic.Timesteps.Count; i++)
        {
            float[]? drawn = null;
            for (int d = 0; d < stochastic.NoiseDraws(i); d++) drawn = generator.Randn(shape);
            var expected = recorded.AsSpan(i * size, size).ToArray();
            Assert.That(drawn ?? new float[size], Is.EqualTo(expected), $"step {i}");
        }
    }

    // ---- formulas beyond the golden cases -------------------------------------------------------

    [TestCase(TimestepSpacing.Trailing, PredictionType.VPrediction, DpmSolverType.Midpoint, 12, 0,
        new long[] { 999, 916, 832, 749, 666, 582, 499, 416, 332, 249, 166, 82 })]
    [TestCase(TimestepSpacing.Leading, PredictionType.Epsilon, DpmSolverType.Heun, 10, 1,
        new long[] { 901, 811, 721, 631, 541, 451, 361, 271, 181, 91 })]
    [TestCase(TimestepSpacing.Linspace, PredictionType.Sample, DpmSolverType.Midpoint, 16, 0,
        new long[] { 999, 937, 874, 812, 749, 687, 624, 562, 500, 437, 375, 312, 250, 187, 125, 62 })]
    public void DpmSolverFollowsTheFormulas(TimestepSpacing spacing, PredictionType prediction, DpmSolverType solver, int steps,
        int stepsOffset, long[] timesteps)
    {
        using var scheduler = new DpmSolverMultistepScheduler(new DpmSolverMultistepOptions
        {
            TimestepSpacing = spacing,
            PredictionType = prediction,
            SolverType = solver,
            StepsOffset = stepsOffset,
        });
        scheduler.SetTimesteps(steps);
        Assert.That(scheduler.Timesteps, Is.EqualTo(timesteps.Select(t => (double)t)), "timesteps");

        // fp64: linear betas, S_t = √((1 − ᾱ)/ᾱ), DPM-Solver++ with first order on the first and last
        // steps (final sigma zero) and the second-order update in between.
        var alphasCumprod = new double[1000];
        double product = 1;
        for (int t = 0; t < 1000; t++) alphasCumprod[t] = product *= 1 - (0.0001 + (0.02 - 0.0001) * t / 999);
        var sigmas = timesteps.Select(t => Math.Sqrt((1 - alphasCumprod[t]) / alphasCumprod[t])).Append(0).ToArray();
        static double AlphaOf(double s) => 1 / Math.Sqrt(s * s + 1);
        static double LambdaOf(double s) => Math.Log(AlphaOf(s)) - Math.Log(s * AlphaOf(s));

        var shape = new long[] { 1, 4, 6, 5 };
        var start = Reference.RandomFloats(new Random(11), 120, 2.0);
        var expected = start.Select(v => (double)v).ToArray();
        double[]? previousX0 = null;
        using var context = Contexts.Cpu();
        var actual = Tensor.FromArray(context, start, shape);
        for (int i = 0; i < steps; i++)
        {
            double s = sigmas[i], next = sigmas[i + 1];
            double alpha = AlphaOf(s), sigma = s * alpha, alphaNext = AlphaOf(next), sigmaNext = next * alphaNext;
            var h = LambdaOf(next) - LambdaOf(s);
            var x0 = new double[expected.Length];
            for (int j = 0; j < x0.Length; j++)
            {
                var output = 0.1 * expected[j] + Math.Sin(timesteps[i] / 1000.0);
                x0[j] = prediction switch
                {
                    PredictionType.Epsilon => (expected[j] - sigma * output) / alpha,
                    PredictionType.VPrediction => alpha * expected[j] - sigma * output,
                    _ => output,
                };
            }
            for (int j = 0; j < x0.Length; j++)
            {
                var update = x0[j];
                if (previousX0 is not null && i < steps - 1)
                {
                    var r = (LambdaOf(s) - LambdaOf(sigmas[i - 1])) / h;
                    var d1 = (x0[j] - previousX0[j]) / r;
                    update = solver == DpmSolverType.Midpoint
                        ? x0[j] + 0.5 * d1
                        : x0[j] - ((Math.Exp(-h) - 1) / h + 1) / (Math.Exp(-h) - 1) * d1;
                }
                expected[j] = sigmaNext / sigma * expected[j] - alphaNext * (Math.Exp(-h) - 1) * update;
            }
            previousX0 = x0;

            using var modelOutput = FakeModel(actual, scheduler.Timesteps[i]);
            var next32 = scheduler.Step(modelOutput, i, actual);
            actual.Dispose();
            actual = next32;
            Assert.That(Reference.RelativeL2(actual.ToArray<float>(), expected), Is.LessThan(1e-5), $"step {i}");
        }
        actual.Dispose();
    }

    [TestCase(PredictionType.Epsilon, true, TimestepSpacing.Linspace, 10, new long[] { 999, 888, 777, 666, 555, 444, 333, 222, 111, 0 })]
    [TestCase(PredictionType.VPrediction, false, TimestepSpacing.Trailing, 7, new long[] { 999, 856, 713, 570, 428, 285, 142 })]
    [TestCase(PredictionType.Sample, true, TimestepSpacing.Leading, 8, new long[] { 875, 750, 625, 500, 375, 250, 125, 0 })]
    public void DdimFollowsTheFormulas(PredictionType prediction, bool clip, TimestepSpacing spacing, int steps, long[] timesteps)
    {
        using var scheduler = new DdimScheduler(new DdimOptions
        {
            BetaSchedule = BetaSchedule.ScaledLinear,
            BetaStart = 0.00085,
            BetaEnd = 0.012,
            PredictionType = prediction,
            ClipSample = clip,
            ClipSampleRange = 1.5,
            TimestepSpacing = spacing,
        });
        scheduler.SetTimesteps(steps);
        Assert.That(scheduler.Timesteps, Is.EqualTo(timesteps.Select(t => (double)t)), "timesteps");

        // fp64: scaled-linear betas; each step goes to t − 1000 // n (ᾱ = 1 below 0), x' = √a' x̂₀ + √(1 − a') ε̂.
        var alphasCumprod = new double[1000];
        double product = 1;
        for (int t = 0; t < 1000; t++)
        {
            var root = Math.Sqrt(0.00085) + (Math.Sqrt(0.012) - Math.Sqrt(0.00085)) * t / 999;
            alphasCumprod[t] = product *= 1 - root * root;
        }

        var shape = new long[] { 2, 3, 4, 5 };
        var start = Reference.RandomFloats(new Random(12), 120, 2.0);
        var expected = start.Select(v => (double)v).ToArray();
        using var context = Contexts.Cpu();
        var actual = Tensor.FromArray(context, start, shape);
        for (int i = 0; i < steps; i++)
        {
            var t = timesteps[i];
            var a = alphasCumprod[t];
            var previousT = t - 1000 / steps;
            var aPrevious = previousT >= 0 ? alphasCumprod[previousT] : 1.0;
            for (int j = 0; j < expected.Length; j++)
            {
                var x = expected[j];
                var output = 0.1 * x + Math.Sin(t / 1000.0);
                var (x0, eps) = prediction switch
                {
                    PredictionType.Epsilon => ((x - Math.Sqrt(1 - a) * output) / Math.Sqrt(a), output),
                    PredictionType.VPrediction => (Math.Sqrt(a) * x - Math.Sqrt(1 - a) * output, Math.Sqrt(a) * output + Math.Sqrt(1 - a) * x),
                    _ => (output, (x - Math.Sqrt(a) * output) / Math.Sqrt(1 - a)),
                };
                if (clip) x0 = Math.Clamp(x0, -1.5, 1.5);
                expected[j] = Math.Sqrt(aPrevious) * x0 + Math.Sqrt(1 - aPrevious) * eps;
            }

            using var modelOutput = FakeModel(actual, scheduler.Timesteps[i]);
            var next = scheduler.Step(modelOutput, i, actual);
            actual.Dispose();
            actual = next;
            Assert.That(Reference.RelativeL2(actual.ToArray<float>(), expected), Is.LessThan(1e-5), $"step {i}");
        }
        actual.Dispose();
    }

    [TestCase(PredictionType.Epsilon, true, DdpmVarianceType.FixedLarge, TimestepSpacing.Linspace, 6, new long[] { 999, 799, 599, 400, 200, 0 })]
    [TestCase(PredictionType.VPrediction, false, DdpmVarianceType.FixedSmall, TimestepSpacing.Trailing, 8, new long[] { 999, 874, 749, 624, 499, 374, 249, 124 })]
    public void DdpmFollowsTheFormulas(PredictionType prediction, bool clip, DdpmVarianceType varianceType, TimestepSpacing spacing,
        int steps, long[] timesteps)
    {
        using var scheduler = new DdpmScheduler(new DdpmOptions
        {
            PredictionType = prediction,
            ClipSample = clip,
            VarianceType = varianceType,
            TimestepSpacing = spacing,
        });
        scheduler.SetTimesteps(steps);
        Assert.That(scheduler.Timesteps, Is.EqualTo(timesteps.Select(t => (double)t)), "timesteps");
        Assert.That(Enumerable.Range(0, steps).Select(scheduler.NoiseDraws), Is.EqualTo(timesteps.Select(t => t > 0 ? 1 : 0)), "draws");

        // fp64: linear betas; each step goes to the next timestep (ᾱ = 1 after the last), posterior mean
        // plus √variance·noise for t > 0.
        var alphasCumprod = new double[1000];
        double product = 1;
        for (int t = 0; t < 1000; t++) alphasCumprod[t] = product *= 1 - (0.0001 + (0.02 - 0.0001) * t / 999);

        var shape = new long[] { 1, 3, 4, 6 };
        var start = Reference.RandomFloats(new Random(13), 72, 2.0);
        var expected = start.Select(v => (double)v).ToArray();
        using var context = Contexts.Cpu();
        var actual = Tensor.FromArray(context, start, shape);
        for (int i = 0; i < steps; i++)
        {
            var t = timesteps[i];
            var a = alphasCumprod[t];
            var aPrevious = i + 1 < steps ? alphasCumprod[timesteps[i + 1]] : 1.0;
            var beta = 1 - a / aPrevious;
            var std = t == 0 ? 0 : Math.Sqrt(varianceType == DdpmVarianceType.FixedLarge ? beta : (1 - aPrevious) / (1 - a) * beta);
            var noise = Reference.RandomFloats(new Random(100 + i), 72);
            for (int j = 0; j < expected.Length; j++)
            {
                var x = expected[j];
                var output = 0.1 * x + Math.Sin(t / 1000.0);
                var x0 = prediction == PredictionType.Epsilon
                    ? (x - Math.Sqrt(1 - a) * output) / Math.Sqrt(a)
                    : Math.Sqrt(a) * x - Math.Sqrt(1 - a) * output;
                if (clip) x0 = Math.Clamp(x0, -1, 1);
                expected[j] = Math.Sqrt(aPrevious) * beta / (1 - a) * x0 + Math.Sqrt(a / aPrevious) * (1 - aPrevious) / (1 - a) * x + std * noise[j];
            }

            using var modelOutput = FakeModel(actual, scheduler.Timesteps[i]);
            using var noiseTensor = t > 0 ? Tensor.FromArray(context, noise, shape) : null;
            var next = scheduler.Step(modelOutput, i, actual, noiseTensor);
            actual.Dispose();
            actual = next;
            Assert.That(Reference.RelativeL2(actual.ToArray<float>(), expected), Is.LessThan(1e-5), $"step {i}");
        }
        actual.Dispose();
    }

    [Test]
    public void FlowMatchStretchesToTheTerminalShift()
    {
        using var scheduler = new FlowMatchEulerScheduler(new FlowMatchEulerOptions { Shift = 2.0, ShiftTerminal = 0.1 });
        scheduler.SetTimesteps([1.0, 0.75, 0.5, 0.25]);

        // shift 2: s' = 2s/(1 + s) = 1, 6/7, 2/3, 2/5; then 1 − (1 − s')·(1 − 0.1)/(1 − 2/5).
        double[] shifted = [1, 6 / 7.0, 2 / 3.0, 2 / 5.0];
        var expected = shifted.Select(s => 1 - (1 - s) * 0.9 / 0.6).Append(0).ToArray();
        Assert.That(scheduler.Sigmas, Is.EqualTo(expected).Within(1e-6));
        Assert.That(scheduler.Timesteps, Is.EqualTo(expected.Take(4).Select(s => s * 1000)).Within(1e-3));
    }

    [Test]
    public void FlowMatchStepIsEulerOnTheVelocity()
    {
        using var scheduler = new FlowMatchEulerScheduler(new FlowMatchEulerOptions { InvertSigmas = true });
        scheduler.SetTimesteps([1.0, 0.5]);
        Assert.That(scheduler.Sigmas, Is.EqualTo(new[] { 0.0, 0.5, 1.0 }));
        Assert.That(scheduler.Timesteps, Is.EqualTo(new[] { 0.0, 500.0 }));
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.FromArray(context, new[] { 1f, -2f, 3f }, 3);
        var v = Tensor.FromArray(context, new[] { 0.5f, 4f, -1f }, 3);
        Assert.That(scheduler.Step(v, 0, x).ToArray<float>(), Is.EqualTo(new[] { 1.25f, 0f, 2.5f }));
        Assert.That(scheduler.Step(v, 1, x).ToArray<float>(), Is.EqualTo(new[] { 1.25f, 0f, 2.5f }));
    }

    // ---- dtypes and history ---------------------------------------------------------------------

    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void HalfLatentsStepInFloat32(DType dtype)
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var (sample, _) = Data.Random(context, dtype, 21, 2.0, 2, 4, 8);
        var (output, _) = Data.Random(context, dtype, 22, 1.0, 2, 4, 8);
        using var half = new DpmSolverMultistepScheduler();
        using var full = new DpmSolverMultistepScheduler();
        half.SetTimesteps(5);
        full.SetTimesteps(5);
        for (int i = 0; i < 2; i++)
        {
            var stepped = half.Step(output, i, sample);
            var reference = full.Step(output.To(DType.F32), i, sample.To(DType.F32)).To(dtype);
            Assert.That(stepped.DType, Is.EqualTo(dtype));
            Assert.That(Bits(stepped.To(DType.F32)), Is.EqualTo(Bits(reference.To(DType.F32))), $"step {i}");
        }
    }

    [Test]
    public void HistoryIsFreedByResetAndDispose()
    {
        using var context = Contexts.Cpu();
        using var scheduler = new DpmSolverMultistepScheduler();
        scheduler.SetTimesteps(4);
        using (var scope = new TensorScope())
        {
            var x = Tensor.Full(context, DType.F32, 0.5, 1, 4, 8, 8);
            var v = Tensor.Full(context, DType.F32, 0.25, 1, 4, 8, 8);
            using var top = x.Narrow(2, 0, 4);
            using var bottom = x.Narrow(2, 4, 4);
            scheduler.Step(v.Narrow(2, 0, 4), 0, top, slice: 0);
            scheduler.Step(v.Narrow(2, 4, 4), 0, bottom, slice: 1);
        }
        Assert.That(context.AllocatorStats.BytesInUse, Is.GreaterThan(0UL), "the x̂₀ of both slices is kept");
        scheduler.Reset();
        Assert.That(context.AllocatorStats.BytesInUse, Is.Zero, "after Reset");

        using (var scope = new TensorScope())
        {
            var x = Tensor.Full(context, DType.F32, 0.5, 1, 4, 8, 8);
            scheduler.Step(x, 0, x);
        }
        scheduler.Dispose();
        Assert.That(context.AllocatorStats.BytesInUse, Is.Zero, "after Dispose");
    }

    [Test]
    public void ResetStartsTheSameGenerationAgain()
    {
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        using var scheduler = new DpmSolverMultistepScheduler();
        scheduler.SetTimesteps(6);
        var (start, _) = Data.Random(context, 31, 1.0, 2, 3, 4);
        float[] Run()
        {
            var x = start;
            for (int i = 0; i < 6; i++) x = scheduler.Step(FakeModel(x, scheduler.Timesteps[i]), i, x);
            return x.ToArray<float>();
        }
        var first = Run();
        scheduler.Reset();
        Assert.That(Run(), Is.EqualTo(first));
    }

    // ---- errors ---------------------------------------------------------------------------------

    [TestCase("DPMSolverMultistepScheduler", """{"thresholding": true}""", "thresholding")]
    [TestCase("DPMSolverMultistepScheduler", """{"use_karras_sigmas": true}""", "use_karras_sigmas")]
    [TestCase("DPMSolverMultistepScheduler", """{"use_exponential_sigmas": true}""", "use_exponential_sigmas")]
    [TestCase("DPMSolverMultistepScheduler", """{"use_beta_sigmas": true}""", "use_beta_sigmas")]
    [TestCase("DPMSolverMultistepScheduler", """{"use_lu_lambdas": true}""", "use_lu_lambdas")]
    [TestCase("DPMSolverMultistepScheduler", """{"use_flow_sigmas": true}""", "use_flow_sigmas")]
    [TestCase("DPMSolverMultistepScheduler", """{"solver_order": 3}""", "solver_order 3")]
    [TestCase("DPMSolverMultistepScheduler", """{"algorithm_type": "sde-dpmsolver++"}""", "algorithm_type")]
    [TestCase("DPMSolverMultistepScheduler", """{"algorithm_type": "dpmsolver", "final_sigmas_type": "sigma_min"}""", "algorithm_type")]
    [TestCase("DPMSolverMultistepScheduler", """{"variance_type": "learned_range"}""", "variance_type")]
    [TestCase("DPMSolverMultistepScheduler", """{"prediction_type": "flow_prediction"}""", "prediction_type")]
    [TestCase("DDIMScheduler", """{"thresholding": true}""", "thresholding")]
    [TestCase("DDPMScheduler", """{"thresholding": true}""", "thresholding")]
    [TestCase("DDPMScheduler", """{"variance_type": "learned_range"}""", "variance_type")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """{"use_karras_sigmas": true}""", "use_karras_sigmas")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """{"use_beta_sigmas": true}""", "use_beta_sigmas")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """{"time_shift_type": "linear"}""", "time_shift_type")]
    public void UnimplementedOptionsAreNotSupported(string className, string config, string option)
    {
        var error = Assert.Throws<NotSupportedException>(() => Create(className, config).Dispose())!;
        Assert.That(error.Message, Does.Contain(option));
    }

    [TestCase("DPMSolverMultistepScheduler", """{"timestep_spacing": "evenly"}""", "timestep_spacing")]
    [TestCase("DPMSolverMultistepScheduler", """{"beta_start": "small"}""", "beta_start")]
    [TestCase("DPMSolverMultistepScheduler", """{"solver_order": 5}""", "solver_order")]
    [TestCase("DDIMScheduler", """{"beta_schedule": "quadratic"}""", "beta_schedule")]
    [TestCase("DDIMScheduler", """{"trained_betas": [0.1, 0.2]}""", "trained betas")]
    [TestCase("DDPMScheduler", """{"variance_type": "fixed_medium"}""", "variance_type")]
    [TestCase("CogVideoXDPMScheduler", """{"snr_shift_scale": "large"}""", "snr_shift_scale")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """{"shift": true}""", "shift")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """{"num_train_timesteps": 2.5}""", "num_train_timesteps")]
    [TestCase("FlowMatchEulerDiscreteScheduler", """[1, 2]""", "JSON object")]
    public void InvalidConfigsAreRejected(string className, string config, string field)
    {
        var error = Assert.Catch<ArgumentException>(() => Create(className, config).Dispose())!;
        Assert.That(error.Message, Does.Contain(field));
    }

    [Test]
    public void ConfigsTakeDiffusersDefaultsAndSpecialFloats()
    {
        using (var scheduler = (DpmSolverMultistepScheduler)Create("DPMSolverMultistepScheduler", "{}"))
            Assert.That(scheduler.Options, Is.EqualTo(new DpmSolverMultistepOptions()));
        // diffusers' own aliases, and a variance type it ignores.
        using (var scheduler = (DpmSolverMultistepScheduler)Create("DPMSolverMultistepScheduler",
            """{"algorithm_type": "deis", "solver_type": "bh2", "variance_type": "fixed_small"}"""))
            Assert.That(scheduler.Options, Is.EqualTo(new DpmSolverMultistepOptions()));
        using (var scheduler = (DdimScheduler)Create("DDIMScheduler", """{"trained_betas": null, "_class_name": "DDIMScheduler"}"""))
            Assert.That(scheduler.Options, Is.EqualTo(new DdimOptions()));
        using (var scheduler = (FlowMatchEulerScheduler)Create("FlowMatchEulerDiscreteScheduler", """{"shift_terminal": null}"""))
            Assert.That(scheduler.Options, Is.EqualTo(new FlowMatchEulerOptions()));
        using (var scheduler = (DdpmScheduler)Create("DDPMScheduler", """{"variance_type": "fixed_small_log"}"""))
            Assert.That(scheduler.Options, Is.EqualTo(new DdpmOptions()));
        using (var scheduler = (CogVideoXDpmScheduler)Create("CogVideoXDPMScheduler", """{"clip_sample": true}"""))
            Assert.That(scheduler.Options, Is.EqualTo(new DdimOptions
            {
                BetaStart = 0.00085,
                BetaEnd = 0.012,
                BetaSchedule = BetaSchedule.ScaledLinear,
                ClipSample = false,
                SnrShiftScale = 3.0,
            }), "CogVideoX's defaults; it never clips");

        using (var scheduler = (DpmSolverMultistepScheduler)Create("DPMSolverMultistepScheduler", """{"lambda_min_clipped": "-Infinity"}"""))
            Assert.That(scheduler.Options.LambdaMinClipped, Is.EqualTo(double.NegativeInfinity));
        using (var scheduler = (DpmSolverMultistepScheduler)Create("DPMSolverMultistepScheduler", """{"lambda_min_clipped": "Infinity"}"""))
            Assert.That(scheduler.Options.LambdaMinClipped, Is.EqualTo(double.PositiveInfinity));
        using (var scheduler = (FlowMatchEulerScheduler)Create("FlowMatchEulerDiscreteScheduler", """{"shift_terminal": "NaN"}"""))
            Assert.That(scheduler.Options.ShiftTerminal, Is.NaN);
    }

    [Test]
    public void LambdaClippingDropsTheNoisiestTimesteps()
    {
        // λ = log √(ᾱ/(1 − ᾱ)) falls below −5.1 for the last timesteps of the cosine schedule.
        using var scheduler = (DpmSolverMultistepScheduler)Create("DPMSolverMultistepScheduler",
            """{"beta_schedule": "squaredcos_cap_v2", "lambda_min_clipped": -5.1}""");
        scheduler.SetTimesteps(10);
        var clipped = 0;
        for (int t = 0; t < 1000; t++)
        {
            double a = scheduler.AlphasCumprod[t];
            if (0.5 * Math.Log(a / (1 - a)) < -5.1) clipped++;
        }
        Assert.That(clipped, Is.GreaterThan(0));
        Assert.That(scheduler.Timesteps[0], Is.EqualTo(999 - clipped), "linspace over the timesteps that are left");
    }

    static IEnumerable<TestCaseData> Schedulers()
    {
        yield return new TestCaseData("DPMSolverMultistepScheduler");
        yield return new TestCaseData("DDIMScheduler");
        yield return new TestCaseData("DDPMScheduler");
        yield return new TestCaseData("CogVideoXDPMScheduler");
        yield return new TestCaseData("FlowMatchEulerDiscreteScheduler");
    }

    [TestCaseSource(nameof(Schedulers))]
    public void BadStepCallsFailClearly(string className)
    {
        using var scheduler = Create(className, "{}");
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(context, DType.F32, 1, 4, 8);

        var early = Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 0, x))!;
        Assert.That(early.Message, Does.Contain("SetTimesteps"));

        Assert.That(() => scheduler.SetTimesteps(0), Throws.InstanceOf<ArgumentOutOfRangeException>());
        scheduler.SetTimesteps(5);
        foreach (var index in new[] { -1, 5 })
        {
            var outside = Assert.Throws<ArgumentOutOfRangeException>(() => scheduler.Step(x, index, x))!;
            Assert.That(outside.Message, Does.Contain($"step index {index}").And.Contain("5 steps"));
        }

        var other = Tensor.Zeros(context, DType.F32, 1, 4, 7);
        var mismatch = Assert.Throws<XDitException>(() => scheduler.Step(other, 0, x))!;
        Assert.That(mismatch.Status, Is.EqualTo(XditStatus.InvalidArgument));
        Assert.That(mismatch.Message, Does.Contain("[1, 4, 7]").And.Contain("[1, 4, 8]"));

        var integers = Tensor.Zeros(context, DType.I32, 1, 4, 8);
        Assert.That(Contexts.StatusOf(() => scheduler.Step(integers, 0, x)), Is.EqualTo(XditStatus.InvalidArgument));
    }

    [TestCase("DDPMScheduler")]
    [TestCase("CogVideoXDPMScheduler")]
    public void StochasticStepsNeedTheirNoise(string className)
    {
        using var scheduler = (IStochasticScheduler)Create(className, "{}");
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(context, DType.F32, 1, 4, 8);
        Assert.That(() => scheduler.NoiseDraws(0), Throws.InvalidOperationException.With.Message.Contain("SetTimesteps"));
        scheduler.SetTimesteps(5);

        var plain = Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 0, x))!;
        Assert.That(plain.Message, Does.Contain("adds noise").And.Contain("noise, slice"));
        var missing = Assert.Throws<ArgumentNullException>(() => scheduler.Step(x, 0, x, null))!;
        Assert.That(missing.Message, Does.Contain("[1, 4, 8]"));
        var wrong = Assert.Throws<XDitException>(() => scheduler.Step(x, 0, x, Tensor.Zeros(context, DType.F32, 4, 8)))!;
        Assert.That(wrong.Message, Does.Contain("noise (f32 [4, 8])").And.Contain("[1, 4, 8]"));
        Assert.That(() => scheduler.NoiseDraws(5), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void DpmSolverSlicesMustBeSteppedInOrder()
    {
        using var scheduler = new DpmSolverMultistepScheduler();
        scheduler.SetTimesteps(5);
        using var context = Contexts.Cpu();
        using var scope = new TensorScope();
        var x = Tensor.Zeros(context, DType.F32, 1, 4, 8);
        scheduler.Step(x, 0, x, slice: 3);

        var skipped = Assert.Throws<InvalidOperationException>(() => scheduler.Step(x, 2, x, slice: 3))!;
        Assert.That(skipped.Message, Does.Contain("slice 3").And.Contain("step 0"));

        var narrower = x.Narrow(2, 0, 4);
        var reshaped = Assert.Throws<XDitException>(() => scheduler.Step(narrower, 1, narrower, slice: 3))!;
        Assert.That(reshaped.Message, Does.Contain("slice 3").And.Contain("[1, 4, 4]").And.Contain("[1, 4, 8]"));

        Assert.DoesNotThrow(() => scheduler.Step(narrower, 1, narrower, slice: 4), "a new slice starts first order, as img2img does");
    }

    [Test]
    public void DynamicShiftingNeedsMu()
    {
        using var scheduler = new FlowMatchEulerScheduler(new FlowMatchEulerOptions { UseDynamicShifting = true });
        Assert.That(() => scheduler.SetTimesteps(28), Throws.InvalidOperationException.With.Message.Contain("mu"));
        Assert.That(() => scheduler.SetTimesteps([1.0, 0.5]), Throws.ArgumentException.With.Message.Contain("mu"));
        scheduler.SetTimesteps(28, scheduler.MuFor(4096));
        Assert.That(scheduler.Timesteps, Has.Count.EqualTo(28));
    }

    // ---- helpers --------------------------------------------------------------------------------

    /// <summary>One golden scheduler case: its case.json, tensors and the scheduler it describes.</summary>
    sealed record GoldenCase(string Name, JsonElement Case, GoldenTensors Inputs, GoldenTensors Outputs)
    {
        public static GoldenCase Load(string name)
        {
            var folder = GoldenTensors.CaseFolder(name);
            using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "case.json")));
            return new GoldenCase(name, json.RootElement.Clone(),
                GoldenTensors.Load(Path.Combine(folder, "inputs.safetensors")),
                GoldenTensors.Load(Path.Combine(folder, "outputs.safetensors")));
        }

        public double Tolerance => Case.GetProperty("tolerance").GetProperty("value").GetDouble();

        public long[] LatentShape => Inputs.Shape("sample0");

        /// <summary>The recorded noise of step <paramref name="step"/> as a tensor, or null for a
        /// deterministic scheduler.</summary>
        public Tensor? Noise(DeviceContext context, int step)
        {
            if (!Inputs.Names.Contains("variance_noise")) return null;
            var size = (int)Shapes.Product(LatentShape);
            return Tensor.FromArray(context, Inputs.F32("variance_noise").AsSpan(step * size, size).ToArray(), LatentShape);
        }

        /// <summary>The case's scheduler (from its case.json config) after its <c>set_timesteps</c> call;
        /// cases of classes the engine does not implement are reported as skipped.</summary>
        public IScheduler CreateScheduler() => CreateScheduler(Case.GetProperty("scheduler_config"));

        /// <summary>The case's scheduler built from <paramref name="config"/>.</summary>
        public IScheduler CreateScheduler(JsonElement config)
        {
            var className = Case.GetProperty("scheduler_class").GetString()!;
            IScheduler scheduler = className switch
            {
                "DPMSolverMultistepScheduler" => DpmSolverMultistepScheduler.FromConfig(config),
                "DDIMScheduler" => DdimScheduler.FromConfig(config),
                "CogVideoXDDIMScheduler" => DdimScheduler.FromCogVideoXConfig(config),
                "DDPMScheduler" => DdpmScheduler.FromConfig(config),
                "CogVideoXDPMScheduler" => CogVideoXDpmScheduler.FromConfig(config),
                "FlowMatchEulerDiscreteScheduler" => FlowMatchEulerScheduler.FromConfig(config),
                _ => null!,
            };
            if (scheduler is null) Assert.Ignore($"{Name}: the engine has no {className}");

            var call = Case.GetProperty("set_timesteps");
            double? mu = call.TryGetProperty("mu", out var m) ? m.GetDouble() : null;
            if (mu is not null)
            {
                var flow = (FlowMatchEulerScheduler)scheduler;
                Assert.That(flow.MuFor(Case.GetProperty("image_seq_len").GetInt32()), Is.EqualTo(mu), "FluxMu");
            }
            if (call.TryGetProperty("sigmas", out var sigmas))
            {
                Assert.That(sigmas.GetString(), Is.EqualTo("inputs:sigmas_in"));
                ((FlowMatchEulerScheduler)scheduler).SetTimesteps(Inputs.F64("sigmas_in"), mu);
            }
            else
            {
                var steps = call.GetProperty("num_inference_steps").GetInt32();
                if (mu is { } shift) ((FlowMatchEulerScheduler)scheduler).SetTimesteps(steps, shift);
                else scheduler.SetTimesteps(steps);
            }
            return scheduler;
        }
    }

    /// <summary>The golden loop on <paramref name="context"/>, fed with our own samples: the relative L2
    /// errors of each step's model output and new sample against diffusers'.</summary>
    static List<(double Model, double Sample)> RunGoldenLoop(GoldenCase golden, IScheduler scheduler, DeviceContext context)
    {
        var shape = golden.LatentShape;
        var size = (int)Shapes.Product(shape);
        var samples = golden.Outputs.F32("samples");
        var modelOutputs = golden.Outputs.F32("model_outputs");
        Assert.That(golden.Outputs.Shape("samples")[0], Is.EqualTo(scheduler.Timesteps.Count + 1), "step count");

        var errors = new List<(double, double)>();
        var x = Tensor.FromArray(context, golden.Inputs.F32("sample0"), shape);
        try
        {
            for (int i = 0; i < scheduler.Timesteps.Count; i++)
            {
                using var modelOutput = FakeModel(x, scheduler.Timesteps[i]);
                using var noise = golden.Noise(context, i);
                var next = Step(scheduler, modelOutput, i, x, noise);
                x.Dispose();
                x = next;
                errors.Add((Reference.RelativeL2(modelOutput.ToArray<float>(), modelOutputs.AsSpan(i * size, size)),
                    Reference.RelativeL2(x.ToArray<float>(), samples.AsSpan((i + 1) * size, size))));
            }
        }
        finally
        {
            x.Dispose();
        }
        return errors;
    }

    /// <summary>The golden cases' stand-in model, in float32 as torch computes it:
    /// <c>0.1·sample + sin(t/1000)</c> with t converted to float32.</summary>
    static Tensor FakeModel(Tensor sample, double timestep)
    {
        var offset = MathF.Sin((float)timestep / 1000f);
        var values = sample.ToArray<float>();
        for (int i = 0; i < values.Length; i++) values[i] = 0.1f * values[i] + offset;
        return Tensor.FromArray(sample.Context, values, sample.Shape.ToArray());
    }

    /// <summary>A step with the noise for stochastic schedulers (and none for the others).</summary>
    static Tensor Step(IScheduler scheduler, Tensor modelOutput, int stepIndex, Tensor sample, Tensor? noise, int slice = 0) =>
        scheduler is IStochasticScheduler stochastic
            ? stochastic.Step(modelOutput, stepIndex, sample, noise, slice)
            : scheduler.Step(modelOutput, stepIndex, sample, slice);

    static IScheduler Create(string className, string config)
    {
        using var json = JsonDocument.Parse(config);
        return className switch
        {
            "DPMSolverMultistepScheduler" => DpmSolverMultistepScheduler.FromConfig(json.RootElement),
            "DDIMScheduler" => DdimScheduler.FromConfig(json.RootElement),
            "DDPMScheduler" => DdpmScheduler.FromConfig(json.RootElement),
            "CogVideoXDPMScheduler" => CogVideoXDpmScheduler.FromConfig(json.RootElement),
            _ => FlowMatchEulerScheduler.FromConfig(json.RootElement),
        };
    }

    static int[] Bits(Tensor t) => Array.ConvertAll(t.ToArray<float>(), BitConverter.SingleToInt32Bits);

    static string Describe(IEnumerable<double> errors) =>
        string.Join(", ", errors.Select((e, i) => $"{i}: {e:E2}"));
}
