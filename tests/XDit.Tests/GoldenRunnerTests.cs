using XDit.Cli;
using XDit.Cli.Golden;

namespace XDit.Tests;

/// <summary><c>xdit check --golden</c>: golden folders pass, a case whose data no longer matches fails
/// with exit code 1, a folder that is not a case is a usage error.</summary>
[TestFixture]
public class GoldenRunnerTests
{
    [TestCase("pixart_sigma")]
    [TestCase("vae_flux")]
    [TestCase("sched_flowmatch_flux_256x256_28")]
    [TestCase("text/tokenizer_clip_l")]
    [TestCase("text/t5_encoder")]
    public void GoldenCasesPass(string name)
    {
        var output = new StringWriter();
        Assert.That(GoldenRunner.Run(GoldenTensors.CaseFolder(name), output), Is.Zero, output.ToString());
        Assert.That(output.ToString(), Does.Contain(" 0 failed"));
    }

    [Test]
    public void AChangedCaseFails()
    {
        var source = GoldenTensors.CaseFolder("sched_dpmsolver_pixart_10");
        var copy = Directory.CreateTempSubdirectory("xdit-golden").FullName;
        try
        {
            foreach (var file in Directory.GetFiles(source)) File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            var config = Path.Combine(copy, "scheduler_config.json");
            File.WriteAllText(config, File.ReadAllText(config).Replace("\"beta_end\": 0.02", "\"beta_end\": 0.03"));
            var output = new StringWriter();
            Assert.That(GoldenRunner.Run(copy, output), Is.EqualTo(1), output.ToString());
            Assert.That(output.ToString(), Does.Contain("FAIL"));
        }
        finally
        {
            Directory.Delete(copy, recursive: true);
        }
    }

    [Test]
    public void AFolderThatIsNoCaseIsAUsageError()
    {
        var empty = Directory.CreateTempSubdirectory("xdit-empty").FullName;
        try
        {
            Assert.That(Assert.Throws<UsageException>(() => GoldenRunner.Run(empty, TextWriter.Null))!.Message, Does.Contain("not a golden case folder"));
        }
        finally
        {
            Directory.Delete(empty);
        }
    }
}
