using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using XDit.Native;

namespace XDit.Text;

/// <summary>
/// Writes a small CLIP tokenizer folder (<c>vocab.json</c>, <c>merges.txt</c>, <c>tokenizer_config.json</c>,
/// <c>special_tokens_map.json</c>, as <c>CLIPTokenizer.save_pretrained</c> writes them) for the
/// random-weight pipelines, whose tokenizer is made here rather than trained. The ids follow OpenAI's
/// CLIP vocabulary: 0–255 the byte-level symbols in GPT-2's <c>bytes_to_unicode</c> order (so <c>!</c>
/// is 0, bigG's pad id), 256–511 the same symbols ending a word (<c>&lt;/w&gt;</c>), then one id per
/// merge, and <c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c> as the last two ids of the text
/// encoder's vocabulary. Every prompt therefore encodes (every byte has a symbol); a text encoder with
/// the real 49408 ids just never sees the ids between the merges and the specials. Keeping
/// <c>&lt;|endoftext|&gt;</c> the largest id matters: the real CLIP configs carry the legacy
/// <c>eos_token_id = 2</c>, for which the pooled output is taken at the largest id of the prompt.
/// </summary>
public static class ClipVocabularyWriter
{
    const string StartOfText = ClipPreTokenizer.StartOfText;
    const string EndOfText = ClipPreTokenizer.EndOfText;

    /// <summary>The model length of every released CLIP tokenizer (its 77 positions).</summary>
    const int ModelMaxLength = 77;

    /// <summary>A few merges of common English letter pairs, so that encoding merges something, as a
    /// real vocabulary does; each result is a symbol of the vocabulary.</summary>
    static readonly (string Left, string Right)[] Merges =
    [
        ("t", "h"), ("th", "e</w>"), ("a", "n"), ("an", "d</w>"), ("o", "f</w>"), ("i", "n</w>"),
        ("o", "n</w>"), ("i", "n"), ("in", "g</w>"), ("e", "r</w>"), ("e", "d</w>"), ("a", "t</w>"),
    ];

    /// <summary>The smallest <c>vocab_size</c> these files fit: 512 byte symbols, the merges and the two
    /// specials.</summary>
    public static int MinimumVocabSize => 512 + Merges.Length + 2;

    /// <summary>
    /// Writes the tokenizer into <paramref name="folder"/> for a text encoder of <paramref name="vocabSize"/>
    /// ids. <paramref name="padToken"/> is <c>&lt;|endoftext|&gt;</c> for CLIP-L or <c>!</c> for OpenCLIP
    /// bigG (SD3's and SDXL's <c>tokenizer_2</c>), which, as in those folders, is registered as an added
    /// token, so a literal <c>!</c> in a prompt becomes the pad id.
    /// </summary>
    public static void WriteFolder(string folder, int vocabSize, string padToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(padToken);
        if (vocabSize < MinimumVocabSize)
            throw new XDitException(XditStatus.InvalidArgument,
                $"a CLIP vocabulary of {vocabSize} ids cannot hold the {MinimumVocabSize} entries of the written tokenizer");
        var vocab = Vocabulary(vocabSize);
        if (!vocab.TryGetValue(padToken, out var padId))
            throw new XDitException(XditStatus.InvalidArgument,
                $"the pad token '{padToken}' is not in the CLIP vocabulary (use {EndOfText} or a single byte-level symbol such as '!')");

        Directory.CreateDirectory(folder);
        var vocabJson = new JsonObject();
        foreach (var (token, id) in vocab.OrderBy(e => e.Key, StringComparer.Ordinal)) vocabJson[token] = id;
        WriteJson(Path.Combine(folder, "vocab.json"), vocabJson);
        File.WriteAllText(Path.Combine(folder, "merges.txt"),
            "#version: 0.2\n" + string.Concat(Merges.Select(m => $"{m.Left} {m.Right}\n")));

        var added = new JsonObject();
        if (padToken != EndOfText) added[padId.ToString()] = AddedToken(padToken, normalized: false, special: true);
        added[vocab[StartOfText].ToString()] = AddedToken(StartOfText, normalized: true, special: true);
        added[vocab[EndOfText].ToString()] = AddedToken(EndOfText, normalized: true, special: true);
        WriteJson(Path.Combine(folder, "tokenizer_config.json"), new JsonObject
        {
            ["added_tokens_decoder"] = added, ["bos_token"] = StartOfText, ["clean_up_tokenization_spaces"] = true,
            ["eos_token"] = EndOfText, ["errors"] = "replace", ["model_max_length"] = ModelMaxLength,
            ["pad_token"] = padToken, ["tokenizer_class"] = "CLIPTokenizer", ["unk_token"] = EndOfText,
        });
        WriteJson(Path.Combine(folder, "special_tokens_map.json"), new JsonObject
        {
            ["bos_token"] = AddedToken(StartOfText, normalized: true),
            ["eos_token"] = AddedToken(EndOfText, normalized: true),
            ["pad_token"] = padToken == EndOfText ? AddedToken(EndOfText, normalized: true) : padToken,
            ["unk_token"] = AddedToken(EndOfText, normalized: true),
        });
    }

    static Dictionary<string, int> Vocabulary(int vocabSize)
    {
        // bytes_to_unicode maps the printable bytes to themselves and the others, in order, to U+0100…,
        // so its order is that of the symbols' code points.
        var symbols = Enumerable.Range(0, 256).Select(b => ByteLevelAlphabet.ForByte((byte)b)).Order().Select(c => c.ToString()).ToArray();
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var symbol in symbols) vocab.Add(symbol, vocab.Count);
        foreach (var symbol in symbols) vocab.Add(symbol + ClipBpe.EndOfWord, vocab.Count);
        foreach (var (left, right) in Merges) vocab.Add(left + right, vocab.Count);
        vocab.Add(StartOfText, vocabSize - 2);
        vocab.Add(EndOfText, vocabSize - 1);
        return vocab;
    }

    static JsonObject AddedToken(string content, bool normalized, bool? special = null)
    {
        var token = new JsonObject
        {
            ["content"] = content, ["lstrip"] = false, ["normalized"] = normalized, ["rstrip"] = false, ["single_word"] = false,
        };
        if (special is { } s) token["special"] = s;
        return token;
    }

    static void WriteJson(string path, JsonObject json) =>
        File.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions
        {
            WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        }) + "\n");
}
