using System.Globalization;
using System.Text.Json;
using XDit.Native;

namespace XDit.Text;

/// <summary>
/// The T5 tokenizer of the PixArt, SD3 and Flux pipelines, giving exactly the ids of transformers' slow
/// <c>T5Tokenizer</c> with <c>legacy=True</c> (v4.44): the literal text of added tokens (<c>&lt;/s&gt;</c>,
/// <c>&lt;pad&gt;</c>, <c>&lt;unk&gt;</c>, <c>&lt;extra_id_N&gt;</c>, the last swallowing the whitespace
/// around them) is cut out first, each remaining piece of text is encoded by the SentencePiece unigram
/// model on its own (so each gets the dummy-prefix <c>▁</c>), and <c>&lt;/s&gt;</c> is appended unless
/// the ids already end with it. Unpaired surrogates in a prompt become U+FFFD. The SentencePiece
/// encoder is this library's own (<see cref="SentencePieceModel"/>), because Microsoft.ML.Tokenizers
/// 2.0.1 cannot load a T5 model and differs from SentencePiece on control characters and unknown runs.
/// </summary>
public sealed class T5Tokenizer
{
    const int DefaultExtraIds = 100;

    readonly SentencePieceModel _model;
    readonly AddedTokenSplitter _splitter;

    T5Tokenizer(SentencePieceModel model, AddedTokenSplitter splitter, int eosId, int padId)
    {
        _model = model;
        _splitter = splitter;
        EosId = eosId;
        PadId = padId;
    }

    /// <summary>The id of <c>&lt;/s&gt;</c>, which ends every encoded prompt.</summary>
    public int EosId { get; }

    /// <summary>The id padding fills with (<c>&lt;pad&gt;</c>).</summary>
    public int PadId { get; }

    /// <summary>Loads <c>spiece.model</c> and, when present, <c>tokenizer_config.json</c> (added tokens,
    /// special tokens, <c>legacy</c>) and <c>special_tokens_map.json</c> from a Hugging Face tokenizer
    /// folder. A config without <c>added_tokens_decoder</c> gets transformers' <c>extra_ids</c> tokens
    /// (<c>&lt;extra_id_K&gt;</c> = pieces + extra_ids − 1 − K).</summary>
    public static T5Tokenizer FromFolder(string folder)
    {
        TokenizerFiles.RequireFolder(folder);
        var model = SentencePieceModel.Load(Path.Combine(folder, "spiece.model"));
        var configPath = Path.Combine(folder, "tokenizer_config.json");
        var config = TokenizerFiles.ReadOptionalJson(configPath);
        var specialsPath = Path.Combine(folder, "special_tokens_map.json");
        var specials = TokenizerFiles.ReadOptionalJson(specialsPath);
        if (config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty("legacy", out var legacy) && legacy.ValueKind == JsonValueKind.False)
            throw new XDitException(XditStatus.Unsupported, $"{configPath}: legacy=false T5 tokenization is not supported (only legacy=true)");

        var added = (config is { } cfg ? TokenizerFiles.AddedTokensDecoder(cfg, configPath) : null)
            ?? ExtraIdTokens(model, ExtraIds(config, configPath));
        string Special(string name, string fallback) =>
            TokenizerFiles.TokenText(config, name, configPath) ?? TokenizerFiles.TokenText(specials, name, specialsPath) ?? fallback;
        var eos = Special("eos_token", "</s>");
        var pad = Special("pad_token", "<pad>");
        var unk = Special("unk_token", "<unk>");
        foreach (var token in new[] { eos, pad, unk })
            if (added.All(a => a.Content != token) && model.TryGetId(token, out var id)) added.Add(new AddedToken(token, id, false, false));

        int IdOf(string token) =>
            added.FirstOrDefault(a => a.Content == token)?.Id
            ?? throw TokenizerFiles.Corrupt(Path.Combine(folder, "spiece.model"), $"has no piece '{token}', the tokenizer's special token");
        return new T5Tokenizer(model, new AddedTokenSplitter(added), IdOf(eos), IdOf(pad));
    }

    /// <summary>The ids of <paramref name="text"/> followed by <c>&lt;/s&gt;</c> (<c>tok(text).input_ids</c>).</summary>
    public long[] Encode(string text)
    {
        var ids = Pieces(text);
        AppendEos(ids);
        return ids.ToArray();
    }

    /// <summary>The ids and attention mask of a batch, as
    /// <c>tok(prompts, padding="max_length", max_length=maxLength, truncation=True)</c> gives them:
    /// a prompt longer than <paramref name="maxLength"/> keeps its first <c>maxLength - 1</c> ids and
    /// <c>&lt;/s&gt;</c>; rows are padded with <see cref="PadId"/> to <paramref name="maxLength"/>, or
    /// only to the longest row without <paramref name="padToMaxLength"/> (which is also the length when
    /// a row is longer and <paramref name="truncate"/> is off).</summary>
    public TokenBatch EncodeBatch(IReadOnlyList<string> prompts, int maxLength, bool padToMaxLength = true, bool truncate = true)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 1);
        var rows = new List<List<long>>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            var ids = Pieces(prompts[i] ?? throw new ArgumentException($"prompt {i} of {prompts.Count} is null", nameof(prompts)));
            if (truncate && ids.Count > maxLength - 1) ids.RemoveRange(maxLength - 1, ids.Count - (maxLength - 1));
            AppendEos(ids);
            rows.Add(ids);
        }
        return TokenBatch.Pad(rows, padToMaxLength ? maxLength : 0, PadId);
    }

    List<long> Pieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<long>();
        foreach (var segment in _splitter.Split(PythonText.ReplaceLoneSurrogates(text)))
        {
            if (segment.Token is { } token) ids.Add(token.Id);
            else _model.Encode(segment.Text, ids);
        }
        return ids;
    }

    /// <summary>transformers' <c>_add_eos_if_not_present</c>: a prompt whose ids already end with
    /// <c>&lt;/s&gt;</c> (its text ended with the literal token) gets no second one.</summary>
    void AppendEos(List<long> ids)
    {
        if (ids.Count == 0 || ids[^1] != EosId) ids.Add(EosId);
    }

    static int ExtraIds(JsonElement? config, string path)
    {
        if (config is not { ValueKind: JsonValueKind.Object } c || !c.TryGetProperty("extra_ids", out var value)) return DefaultExtraIds;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var count) || count < 0)
            throw TokenizerFiles.Corrupt(path, "has an 'extra_ids' that is not a non-negative integer");
        return count;
    }

    /// <summary>The sentinel tokens T5Tokenizer defines when the config does not list its added tokens.</summary>
    static List<AddedToken> ExtraIdTokens(SentencePieceModel model, int extraIds) =>
        Enumerable.Range(0, extraIds)
            .Select(k => new AddedToken(string.Create(CultureInfo.InvariantCulture, $"<extra_id_{k}>"), model.Count - 1 + extraIds - k, true, true))
            .ToList();
}
