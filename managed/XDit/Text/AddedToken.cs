namespace XDit.Text;

/// <summary>
/// A token of the tokenizer's added vocabulary (special tokens such as <c>&lt;/s&gt;</c>, T5's
/// <c>&lt;extra_id_N&gt;</c>, bigG's <c>!</c>): its literal text is cut out of a prompt before the model
/// tokenizes the rest. <see cref="LStrip"/> / <see cref="RStrip"/> make it swallow the whitespace on its
/// left / right, as transformers' <c>AddedToken</c> does.
/// </summary>
internal sealed record AddedToken(string Content, int Id, bool LStrip, bool RStrip);
