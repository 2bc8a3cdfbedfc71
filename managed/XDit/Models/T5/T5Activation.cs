namespace XDit.Models.T5;

/// <summary>The activation of T5's feed-forward (transformers' <c>dense_act_fn</c>).</summary>
public enum T5Activation
{
    /// <summary><c>relu</c>: the original T5 (<c>feed_forward_proj = "relu"</c>).</summary>
    Relu,
    /// <summary><c>gelu_new</c> / <c>gelu_pytorch_tanh</c>, the tanh approximation: T5 v1.1, Flan-T5 and mT5
    /// (<c>"gated-gelu"</c>, the encoder of PixArt, SD3 and Flux).</summary>
    GeluTanh,
    /// <summary><c>gelu</c>: the exact, erf-based GELU.</summary>
    GeluErf,
    /// <summary><c>silu</c> / <c>swish</c>.</summary>
    Silu,
}
