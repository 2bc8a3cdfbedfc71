using System.Text.Json;

namespace XDit.Text;

/// <summary>
/// The CLIP tokenizer (CLIP-L, OpenCLIP bigG) of the SD3 and Flux pipelines, giving exactly the ids of
/// transformers' slow <c>CLIPTokenizer</c> (v4.44) without ftfy installed: the literal text of added
/// tokens (<c>&lt;|startoftext|&gt;</c>, <c>&lt;|endoftext|&gt;</c>, and for bigG the pad token
/// <c>!</c>) is cut out first; each remaining piece is cleaned as BERT's BasicTokenizer does
/// (<see cref="ClipTextCleaner"/>: controls dropped, whitespace folded, CJK ideographs spaced, NFC,
/// lower case), split by CLIP's regex (<see cref="ClipPreTokenizer"/>) and byte-pair encoded word by word
/// (<see cref="ClipBpe"/>); <c>&lt;|startoftext|&gt;</c> and <c>&lt;|endoftext|&gt;</c> go around the ids.
/// Unpaired surrogates in a prompt become U+FFFD, which the clean-up drops.
/// The ftfy variant of the clean-up (<c>ftfy.fix_text</c>) is not reproduced.
/// Microsoft.ML.Tokenizers 2.0.1's BpeTokenizer is not used: with CLIP's vocabulary it splits byte-level
/// symbols above U+007F apart and its merging is quadratic in the word length (see <see cref="ClipBpe"/>);
/// its pre-tokenizer and normaliser hooks could not express the steps above exactly either (the regex
/// needs code-point classes, the clean-up Unicode 14.0 data that .NET does not have here).
/// </summary>
public sealed class ClipTokenizer
{
    /// <summary>CLIPTokenizer reads at most this many merges (49152 − 256 − 2) from merges.txt.</summary>
    const int MaxMerges = 49152 - 256 - 2;

    readonly ClipBpe _bpe;
    readonly AddedTokenSplitter _splitter;
    readonly Func<string, long> _tokenId;

    ClipTokenizer(ClipBpe bpe, AddedTokenSplitter splitter, Func<string, long> tokenId, string bos, string eos, string pad)
    {
        _bpe = bpe;
        _splitter = splitter;
        _tokenId = tokenId;
        BosId = (int)tokenId(bos);
        EosId = (int)tokenId(eos);
        PadId = (int)tokenId(pad);
    }

    /// <summary>The id of <c>&lt;|startoftext|&gt;</c>, first in every encoded prompt.</summary>
    public int BosId { get; }

    /// <summary>The id of <c>&lt;|endoftext|&gt;</c>, last in every encoded prompt.</summary>
    public int EosId { get; }

    /// <summary>The id padding fills with: the folder's <c>pad_token</c> (<c>&lt;|endoftext|&gt;</c> for
    /// CLIP-L, <c>!</c> = 0 for bigG).</summary>
    public int PadId { get; }

    /// <summary>Loads <c>vocab.json</c> and <c>merges.txt</c> and, when present,
    /// <c>tokenizer_config.json</c> (added tokens, special tokens) and <c>special_tokens_map.json</c>
    /// from a Hugging Face tokenizer folder.</summary>
    public static ClipTokenizer FromFolder(string folder)
    {
        TokenizerFiles.RequireFolder(folder);
        var vocabPath = Path.Combine(folder, "vocab.json");
        var vocab = ReadVocabulary(vocabPath);
        var merges = ReadMerges(Path.Combine(folder, "merges.txt"));
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = TokenizerFiles.ReadOptionalJson(configPath);
        var specialsPath = Path.Combine(folder, "special_tokens_map.json");
        var specials = TokenizerFiles.ReadOptionalJson(specialsPath);
        string Special(string name, string fallback) =>
            TokenizerFiles.TokenText(config, name, configPath) ?? TokenizerFiles.TokenText(specials, name, specialsPath) ?? fallback;
        var bos = Special("bos_token", ClipPreTokenizer.StartOfText);
        var eos = Special("eos_token", ClipPreTokenizer.EndOfText);
        var unk = Special("unk_token", ClipPreTokenizer.EndOfText);
        var pad = Special("pad_token", ClipPreTokenizer.EndOfText);

        var added = (config is { } c ? TokenizerFiles.AddedTokensDecoder(c, configPath) : null) ?? [];
        foreach (var token in new[] { bos, eos, unk, pad })
        {
            if (added.Any(a => a.Content == token)) continue;
            if (!vocab.TryGetValue(token, out var id))
                throw TokenizerFiles.Corrupt(vocabPath, $"has no entry for '{token}', the tokenizer's special token");
            added.Add(new AddedToken(token, id, false, false));
        }
        var addedIds = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var token in added) addedIds.TryAdd(token.Content, token.Id);
        var unkId = addedIds[unk];
        long TokenId(string token) =>
            addedIds.TryGetValue(token, out var id) ? id : vocab.TryGetValue(token, out var vocabId) ? vocabId : unkId;
        return new ClipTokenizer(new ClipBpe(merges, TokenId), new AddedTokenSplitter(added), TokenId, bos, eos, pad);
    }

    /// <summary><c>&lt;|startoftext|&gt;</c>, the ids of <paramref name="text"/>, <c>&lt;|endoftext|&gt;</c>
    /// (<c>tok(text).input_ids</c>).</summary>
    public long[] Encode(string text)
    {
        var ids = Tokens(text, int.MaxValue);
        ids.Insert(0, BosId);
        ids.Add(EosId);
        return ids.ToArray();
    }

    /// <summary>The ids and attention mask of a batch, as
    /// <c>tok(prompts, padding="max_length", max_length=maxLength, truncation=True)</c> gives them: a
    /// prompt too long keeps <c>&lt;|startoftext|&gt;</c>, its first <c>maxLength - 2</c> ids and
    /// <c>&lt;|endoftext|&gt;</c>; rows are padded with <see cref="PadId"/> to
    /// <paramref name="maxLength"/>, or only to the longest row without <paramref name="padToMaxLength"/>
    /// (which is also the length when a row is longer and <paramref name="truncate"/> is off).</summary>
    public TokenBatch EncodeBatch(IReadOnlyList<string> prompts, int maxLength = 77, bool padToMaxLength = true, bool truncate = true)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        var rows = new List<List<long>>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            var prompt = prompts[i] ?? throw new ArgumentException($"prompt {i} of {prompts.Count} is null", nameof(prompts));
            var ids = Tokens(prompt, truncate ? maxLength - 2 : int.MaxValue);
            ids.Insert(0, BosId);
            ids.Add(EosId);
            rows.Add(ids);
        }
        return TokenBatch.Pad(rows, padToMaxLength ? maxLength : 0, PadId);
    }

    /// <summary>The ids of <paramref name="text"/> without BOS and EOS, at most <paramref name="limit"/>
    /// of them: words are encoded independently, so the rest of a long prompt need not be.</summary>
    List<long> Tokens(string text, int limit)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<long>();
        foreach (var segment in _splitter.Split(PythonText.ReplaceLoneSurrogates(text)))
        {
            if (ids.Count >= limit) break;
            if (segment.Token is { } token)
            {
                ids.Add(token.Id);
                continue;
            }
            foreach (var word in ClipPreTokenizer.Words(ClipTextCleaner.Clean(segment.Text)))
            {
                if (ids.Count >= limit) break;
                if (word is ClipPreTokenizer.StartOfText or ClipPreTokenizer.EndOfText) ids.Add(_tokenId(word));
                else _bpe.Encode(word, ids);
            }
        }
        if (ids.Count > limit) ids.RemoveRange(limit, ids.Count - limit);
        return ids;
    }

    static Dictionary<string, int> ReadVocabulary(string path)
    {
        var json = TokenizerFiles.ReadJson(path);
        if (json.ValueKind != JsonValueKind.Object) throw TokenizerFiles.Corrupt(path, "is not a JSON object of token → id");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in json.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                throw TokenizerFiles.Corrupt(path, $"maps '{entry.Name}' to {entry.Value.GetRawText()}, not a non-negative integer id");
            vocab[entry.Name] = id;
        }
        if (vocab.Count == 0) throw TokenizerFiles.Corrupt(path, "is empty");
        return vocab;
    }

    /// <summary>merges.txt as CLIPTokenizer reads it: the first line (<c>#version: ...</c>) skipped, one
    /// merge "left right" per line in rank order. A blank line keeps its rank and merges nothing.</summary>
    static List<(string Left, string Right)> ReadMerges(string path)
    {
        var lines = TokenizerFiles.ReadText(path).Trim().Split('\n');
        var merges = new List<(string, string)>();
        for (int i = 1; i < lines.Length && i <= MaxMerges; i++)
        {
            var parts = lines[i].Split((char[])[' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 0)
            {
                merges.Add(("", ""));
                continue;
            }
            if (parts.Length != 2) throw TokenizerFiles.Corrupt(path, $"line {i + 1} is not a merge 'left right': '{lines[i]}'");
            merges.Add((parts[0], parts[1]));
        }
        if (merges.Count == 0) throw TokenizerFiles.Corrupt(path, "has no merges");
        return merges;
    }
}
