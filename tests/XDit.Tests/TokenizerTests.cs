using System.Diagnostics;
using System.Text;
using System.Text.Json;
using XDit.Native;
using XDit.Text;

namespace XDit.Tests;

/// <summary>
/// The T5 and CLIP tokenizers against transformers' slow tokenizers (<c>golden/text/tokenizer_*</c>:
/// ids from transformers 4.44.2 with SentencePiece 0.1.97, CLIP without ftfy). Every case of each
/// folder's cases.json is checked, id for id: the plain encoding with its attention mask, and every
/// <c>padded[N]</c> variant (<c>padding="max_length", max_length=N, truncation=True</c>), one prompt at a
/// time and as one batch. The CLIP ids are the primary (no-ftfy) fields; the T5 ids the legacy=True
/// ones (<c>ids_legacy_false</c> is informational and not followed). Then the error paths (missing or
/// corrupt files) and hostile prompts (lone surrogates, empty, a megabyte long).
/// </summary>
[TestFixture]
public class TokenizerTests
{
    sealed record GoldenCase(string Category, string Text, long[] Ids, long[] AttentionMask, Dictionary<int, (long[] Ids, long[] Mask)> Padded)
    {
        public override string ToString() => $"{Category} {JsonSerializer.Serialize(Text.Length > 40 ? Text[..40] + "…" : Text)}";
    }

    static readonly string[] ClipFolders = ["tokenizer_clip_l", "tokenizer_clip_g"];

    static string Folder(string name) => GoldenTensors.CaseFolder($"text/{name}");

    static List<GoldenCase> Cases(string folder)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "cases.json")));
        var cases = json.RootElement.GetProperty("cases").EnumerateArray().Select(c => new GoldenCase(
            c.GetProperty("category").GetString()!,
            c.GetProperty("text").GetString()!,
            Longs(c.GetProperty("ids")),
            Longs(c.GetProperty("attention_mask")),
            c.GetProperty("padded").EnumerateObject().ToDictionary(
                p => int.Parse(p.Name),
                p => (Longs(p.Value.GetProperty("input_ids")), Longs(p.Value.GetProperty("attention_mask")))))).ToList();
        Assert.That(cases, Is.Not.Empty, $"{folder}/cases.json lists no cases");
        return cases;
    }

    static long[] Longs(JsonElement array) => array.EnumerateArray().Select(e => e.GetInt64()).ToArray();

    /// <summary>Every case's plain encoding (<c>tok(text)</c>) through <paramref name="encode"/>, and the
    /// same as a one-row batch with neither padding nor truncation (for its attention mask); every
    /// mismatch is reported at once.</summary>
    static void AssertPlainEncodings(string folderName, Func<string, long[]> encode, Func<string, TokenBatch> unpaddedBatch)
    {
        var cases = Cases(Folder(folderName));
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var ids = encode(c.Text);
            if (!ids.SequenceEqual(c.Ids)) failures.Add(Mismatch($"{c}: Encode", ids, c.Ids));
            var batch = unpaddedBatch(c.Text);
            if (!batch.Ids(0).SequenceEqual(c.Ids)) failures.Add(Mismatch($"{c}: unpadded batch ids", batch.Ids(0), c.Ids));
            if (!batch.Mask(0).SequenceEqual(c.AttentionMask)) failures.Add(Mismatch($"{c}: unpadded batch mask", batch.Mask(0), c.AttentionMask));
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} mismatches over {cases.Count} cases:\n{string.Join("\n", failures)}");
    }

    /// <summary>Every case's <c>padded[N]</c> variants through <paramref name="encode"/>(text, N).</summary>
    static void AssertPaddedVariants(string folderName, Func<string, int, TokenBatch> encode)
    {
        var failures = new List<string>();
        var variants = 0;
        foreach (var c in Cases(Folder(folderName)))
        {
            foreach (var (n, (ids, mask)) in c.Padded)
            {
                variants++;
                var batch = encode(c.Text, n);
                if (!batch.Ids(0).SequenceEqual(ids)) failures.Add(Mismatch($"{c}: padded[{n}] ids", batch.Ids(0), ids));
                if (!batch.Mask(0).SequenceEqual(mask)) failures.Add(Mismatch($"{c}: padded[{n}] mask", batch.Mask(0), mask));
            }
        }
        Assert.That(variants, Is.GreaterThan(0), "cases.json lists no padded variants");
        Assert.That(failures, Is.Empty, $"{failures.Count} mismatches over {variants} variants:\n{string.Join("\n", failures)}");
    }

    /// <summary>All the cases as one batch per max_length: each row must equal its padded variant.</summary>
    static void AssertBatchOfAllCases(List<GoldenCase> cases, Func<string[], int, TokenBatch> encodeBatch)
    {
        var prompts = cases.Select(c => c.Text).ToArray();
        foreach (var n in cases[0].Padded.Keys)
        {
            var batch = encodeBatch(prompts, n);
            Assert.That((batch.BatchSize, batch.Length), Is.EqualTo((cases.Count, n)), $"shape at max_length {n}");
            for (int i = 0; i < cases.Count; i++)
            {
                Assert.That(batch.Ids(i), Is.EqualTo(cases[i].Padded[n].Ids), $"{cases[i]}: row {i} ids at max_length {n}");
                Assert.That(batch.Mask(i), Is.EqualTo(cases[i].Padded[n].Mask), $"{cases[i]}: row {i} mask at max_length {n}");
            }
        }
    }

    static string Mismatch(string what, long[] actual, long[] expected) =>
        $"{what}\n  got  {string.Join(",", actual)}\n  want {string.Join(",", expected)}";

    // ---- T5 ---------------------------------------------------------------------------------------

    [Test]
    public void T5EncodesEveryCaseLikeTransformers()
    {
        var tokenizer = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        AssertPlainEncodings("tokenizer_t5", tokenizer.Encode,
            text => tokenizer.EncodeBatch([text], maxLength: 1, padToMaxLength: false, truncate: false));
    }

    [Test]
    public void T5PaddedAndTruncatedVariantsMatchTransformers()
    {
        var tokenizer = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        AssertPaddedVariants("tokenizer_t5", (text, n) => tokenizer.EncodeBatch([text], n, padToMaxLength: true, truncate: true));
    }

    [Test]
    public void T5BatchOfAllCasesMatchesRowByRow()
    {
        var folder = Folder("tokenizer_t5");
        var tokenizer = T5Tokenizer.FromFolder(folder);
        AssertBatchOfAllCases(Cases(folder), (prompts, n) => tokenizer.EncodeBatch(prompts, n));
    }

    [Test]
    public void T5DoesNotDoubleAnEosTheTextAlreadyEndsWith()
    {
        var tokenizer = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        Assert.That(tokenizer.Encode("a photo of a cat </s>"), Is.EqualTo(tokenizer.Encode("a photo of a cat")));
        var truncated = tokenizer.EncodeBatch(["a </s> cat"], maxLength: 3);
        Assert.That(truncated.Ids(0), Is.EqualTo(new long[] { tokenizer.Encode("a")[0], tokenizer.EosId, tokenizer.PadId }),
            "truncated to 2 ids that end in </s>: no second </s> (_add_eos_if_not_present)");
        Assert.That(truncated.Mask(0), Is.EqualTo(new long[] { 1, 1, 0 }));
    }

    // ---- CLIP -------------------------------------------------------------------------------------

    [TestCaseSource(nameof(ClipFolders))]
    public void ClipEncodesEveryCaseLikeTransformers(string folderName)
    {
        var tokenizer = ClipTokenizer.FromFolder(Folder(folderName));
        AssertPlainEncodings(folderName, tokenizer.Encode,
            text => tokenizer.EncodeBatch([text], maxLength: 2, padToMaxLength: false, truncate: false));
    }

    [TestCaseSource(nameof(ClipFolders))]
    public void ClipPaddedAndTruncatedVariantsMatchTransformers(string folderName)
    {
        var tokenizer = ClipTokenizer.FromFolder(Folder(folderName));
        AssertPaddedVariants(folderName, (text, n) => tokenizer.EncodeBatch([text], n, padToMaxLength: true, truncate: true));
    }

    [TestCaseSource(nameof(ClipFolders))]
    public void ClipBatchOfAllCasesMatchesRowByRow(string folderName)
    {
        var folder = Folder(folderName);
        var tokenizer = ClipTokenizer.FromFolder(folder);
        AssertBatchOfAllCases(Cases(folder), (prompts, n) => tokenizer.EncodeBatch(prompts, n));
    }

    [Test]
    public void ClipPadTokenComesFromTheFolderConfig()
    {
        var l = ClipTokenizer.FromFolder(Folder("tokenizer_clip_l"));
        var g = ClipTokenizer.FromFolder(Folder("tokenizer_clip_g"));
        Assert.That((l.BosId, l.EosId, l.PadId), Is.EqualTo((912, 913, 913)), "CLIP-L pads with <|endoftext|>");
        Assert.That((g.BosId, g.EosId, g.PadId), Is.EqualTo((912, 913, 0)), "bigG pads with '!' (id 0)");
    }

    // ---- errors -----------------------------------------------------------------------------------

    /// <summary>A writable copy of a golden tokenizer folder, deleted afterwards.</summary>
    sealed class FolderCopy : IDisposable
    {
        public FolderCopy(string source)
        {
            Path = Directory.CreateTempSubdirectory("xdit-tokenizer-").FullName;
            foreach (var file in Directory.GetFiles(source))
            {
                var target = System.IO.Path.Combine(Path, System.IO.Path.GetFileName(file));
                File.Copy(file, target);
                File.SetAttributes(target, FileAttributes.Normal);
            }
        }

        public string Path { get; }

        public string FileIn(string name) => System.IO.Path.Combine(Path, name);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }

    static void AssertInvalidArgumentNaming(Action load, string fileName, string because)
    {
        var error = Assert.Throws<XDitException>(load)!;
        Assert.That(error.Status, Is.EqualTo(XditStatus.InvalidArgument), because);
        Assert.That(error.Message, Does.Contain(fileName), because);
    }

    [Test]
    public void MissingFolderOrFileIsInvalidArgumentNamingIt()
    {
        var nowhere = Path.Combine(Path.GetTempPath(), "xdit-no-such-tokenizer");
        AssertInvalidArgumentNaming(() => T5Tokenizer.FromFolder(nowhere), nowhere, "missing folder");
        AssertInvalidArgumentNaming(() => ClipTokenizer.FromFolder(nowhere), nowhere, "missing folder");

        using (var t5 = new FolderCopy(Folder("tokenizer_t5")))
        {
            File.Delete(t5.FileIn("spiece.model"));
            AssertInvalidArgumentNaming(() => T5Tokenizer.FromFolder(t5.Path), "spiece.model", "missing spiece.model");
        }
        foreach (var name in new[] { "vocab.json", "merges.txt" })
        {
            using var clip = new FolderCopy(Folder("tokenizer_clip_l"));
            File.Delete(clip.FileIn(name));
            AssertInvalidArgumentNaming(() => ClipTokenizer.FromFolder(clip.Path), name, $"missing {name}");
        }
    }

    [Test]
    public void CorruptFilesAreInvalidArgumentNamingThem()
    {
        using (var t5 = new FolderCopy(Folder("tokenizer_t5")))
        {
            var model = File.ReadAllBytes(t5.FileIn("spiece.model"));
            File.WriteAllBytes(t5.FileIn("spiece.model"), model[..(model.Length / 2)]);
            AssertInvalidArgumentNaming(() => T5Tokenizer.FromFolder(t5.Path), "spiece.model", "truncated model");
            File.WriteAllBytes(t5.FileIn("spiece.model"), Encoding.UTF8.GetBytes("<html>not a model</html>"));
            AssertInvalidArgumentNaming(() => T5Tokenizer.FromFolder(t5.Path), "spiece.model", "text instead of a model");
            File.WriteAllBytes(t5.FileIn("spiece.model"), model);
            File.WriteAllText(t5.FileIn("tokenizer_config.json"), "{ \"legacy\": true, ");
            AssertInvalidArgumentNaming(() => T5Tokenizer.FromFolder(t5.Path), "tokenizer_config.json", "truncated JSON");
        }
        using (var clip = new FolderCopy(Folder("tokenizer_clip_g")))
        {
            File.WriteAllText(clip.FileIn("vocab.json"), "[1, 2, 3]");
            AssertInvalidArgumentNaming(() => ClipTokenizer.FromFolder(clip.Path), "vocab.json", "vocab not an object");
            File.WriteAllText(clip.FileIn("vocab.json"), "{\"a\": \"b\"}");
            AssertInvalidArgumentNaming(() => ClipTokenizer.FromFolder(clip.Path), "vocab.json", "id not a number");
        }
        using (var clip = new FolderCopy(Folder("tokenizer_clip_l")))
        {
            File.WriteAllText(clip.FileIn("merges.txt"), "#version: 0.2\nt h\nthis line has four parts\n");
            AssertInvalidArgumentNaming(() => ClipTokenizer.FromFolder(clip.Path), "merges.txt", "malformed merge line");
        }
    }

    [Test]
    public void BadArgumentsAreArgumentExceptions()
    {
        var t5 = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        var clip = ClipTokenizer.FromFolder(Folder("tokenizer_clip_l"));
        Assert.Throws<ArgumentNullException>(() => t5.Encode(null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => t5.EncodeBatch(["a"], 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => clip.EncodeBatch(["a"], 1));
        Assert.That(Assert.Throws<ArgumentException>(() => clip.EncodeBatch(["a", null!]))!.Message, Does.Contain("prompt 1"));
    }

    // ---- hostile prompts --------------------------------------------------------------------------

    [Test]
    public void LoneSurrogatesAreReplacedNotThrown()
    {
        var t5 = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        Assert.That(t5.Encode("cat\uD800 dog\uDC00"), Is.EqualTo(t5.Encode("cat\uFFFD dog\uFFFD")));
        Assert.That(t5.Encode("\uDFFF\uD800"), Is.EqualTo(t5.Encode("\uFFFD\uFFFD")));
        foreach (var name in ClipFolders)
        {
            var clip = ClipTokenizer.FromFolder(Folder(name));
            Assert.That(clip.Encode("cat\uD800 dog\uDC00"), Is.EqualTo(clip.Encode("cat dog")), $"{name}: U+FFFD is dropped by the clean-up");
            Assert.That(clip.EncodeBatch(["\uD83D"]).Ids(0)[..2], Is.EqualTo(new long[] { clip.BosId, clip.EosId }));
        }
    }

    [Test]
    public void EmptyPromptsAreJustTheSpecialTokens()
    {
        var t5 = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        Assert.That(t5.Encode(""), Is.EqualTo(new long[] { t5.EosId }));
        var batch = t5.EncodeBatch(["", "   "], 4);
        Assert.That(batch.Ids(1), Is.EqualTo(new long[] { t5.EosId, t5.PadId, t5.PadId, t5.PadId }));
        Assert.That(batch.Mask(0), Is.EqualTo(new long[] { 1, 0, 0, 0 }));
        var clip = ClipTokenizer.FromFolder(Folder("tokenizer_clip_g"));
        Assert.That(clip.Encode(""), Is.EqualTo(new long[] { clip.BosId, clip.EosId }));
        Assert.That(clip.EncodeBatch([]).BatchSize, Is.EqualTo(0));
    }

    /// <summary>A hang guard, not a timing test: a megabyte prompt (many words, one endless word, CJK,
    /// added-token look-alikes) must come back truncated in far less than the generous bound.</summary>
    [Test]
    public void MegabytePromptsAreTruncatedWithoutBlowUp()
    {
        const int megabyte = 1 << 20;
        var prompts = new[]
        {
            string.Concat(Enumerable.Repeat("a photo of a cat, ", megabyte / 18)),
            new string('a', megabyte),
            new string('東', megabyte / 2),
            string.Concat(Enumerable.Repeat("<extra_id_1<|endoftext|!", megabyte / 24)),
            string.Concat(Enumerable.Repeat("é\u0301\u0323", megabyte / 3)),
        };
        var t5 = T5Tokenizer.FromFolder(Folder("tokenizer_t5"));
        var clip = ClipTokenizer.FromFolder(Folder("tokenizer_clip_g"));
        foreach (var prompt in prompts)
        {
            var watch = Stopwatch.StartNew();
            var t5Batch = t5.EncodeBatch([prompt], 120);
            var clipBatch = clip.EncodeBatch([prompt], 77);
            Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(5)), $"{prompt[..20]}…: {watch.Elapsed.TotalSeconds:F2} s");
            AssertEndsWithEos(t5Batch, t5.EosId, 120);
            AssertEndsWithEos(clipBatch, clip.EosId, 77);
        }
    }

    static void AssertEndsWithEos(TokenBatch batch, long eosId, int maxLength)
    {
        Assert.That(batch.Length, Is.EqualTo(maxLength));
        var real = (int)batch.Mask(0).Sum();
        Assert.That(batch.Mask(0)[..real], Is.All.EqualTo(1));
        Assert.That(batch.Mask(0)[real..], Is.All.EqualTo(0));
        Assert.That(batch.Ids(0)[real - 1], Is.EqualTo(eosId), "the last real token is EOS");
    }
}
