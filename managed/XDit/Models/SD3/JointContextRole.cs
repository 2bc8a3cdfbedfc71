namespace XDit.Models.SD3;

/// <summary>What a <see cref="JointAttention"/> does with the context (text) stream.</summary>
public enum JointContextRole
{
    /// <summary>No context: self-attention over the image tokens (SD3.5-medium's <c>attn2</c>).</summary>
    None,

    /// <summary>The context's queries, keys and values join the image's, and the context gets its own
    /// output projection (<c>to_add_out</c>): every block but the last.</summary>
    Joint,

    /// <summary>diffusers' <c>context_pre_only</c> (the last block): the context's keys and values join
    /// the image's, but its attention output is discarded, so its queries are never computed.</summary>
    KeysAndValues,
}
