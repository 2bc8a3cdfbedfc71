using XDit.Cli;

namespace XDit.Tests;

/// <summary>The xdit argument parser: xDiT's names in both spellings, repeated options, clear errors.</summary>
[TestFixture]
public class CommandLineTests
{
    [Test]
    public void DashAndUnderscoreSpellingsAreTheSame()
    {
        var line = new CommandLine(["--num-inference-steps", "20", "--guidance_scale=4.5", "--use_cfg_parallel", "--prompt", "a", "--prompt", "b c"]);
        Assert.That(line.Int("num_inference_steps", 0), Is.EqualTo(20));
        Assert.That(line.Double("guidance-scale", 0), Is.EqualTo(4.5));
        Assert.That(line.Flag("use-cfg-parallel"), Is.True);
        Assert.That(line.Strings("prompt"), Is.EqualTo(new[] { "a", "b c" }));
        line.RejectUnknown("generate");
    }

    [Test]
    public void MistakesAreOneLineUsageErrors()
    {
        Assert.That(Assert.Throws<UsageException>(() => new CommandLine(["stray"]))!.Message, Does.Contain("unexpected argument 'stray'"));
        var line = new CommandLine(["--height", "abc", "--typo", "1"]);
        Assert.That(Assert.Throws<UsageException>(() => line.Int("height", 0))!.Message, Does.Contain("--height must be an integer"));
        Assert.That(Assert.Throws<UsageException>(() => line.RejectUnknown("generate"))!.Message, Does.Contain("--typo"));
        var range = new CommandLine(["--num_inference_steps", "0"]);
        Assert.That(Assert.Throws<UsageException>(() => range.Int("num_inference_steps", 20, min: 1))!.Message, Does.Contain("[1,"));
        var missing = new CommandLine(["--prompt"]);
        Assert.That(Assert.Throws<UsageException>(() => missing.Strings("prompt"))!.Message, Does.Contain("needs a value"));
    }

    [Test]
    public void ListsAcceptCommasAndRepeats()
    {
        var line = new CommandLine(["--attn_layer_num_for_pp", "4,4", "--attn-layer-num-for-pp", "2"]);
        Assert.That(line.Ints("attn_layer_num_for_pp"), Is.EqualTo(new[] { 4, 4, 2 }));
    }
}
