namespace XDit.Models.Clip;

/// <summary>The activation of CLIP's MLP (transformers' <c>hidden_act</c>).</summary>
public enum ClipActivation
{
    /// <summary><c>quick_gelu</c>, x·sigmoid(1.702·x): OpenAI's CLIP, e.g. CLIP-L/14, the first text encoder
    /// of SD3 and Flux's only CLIP.</summary>
    QuickGelu,
    /// <summary><c>gelu</c>, the exact erf GELU: OpenCLIP's bigG/14 and H/14 (SDXL's and SD3's second text
    /// encoder).</summary>
    GeluErf,
    /// <summary><c>gelu_new</c> / <c>gelu_pytorch_tanh</c>, the tanh approximation of GELU.</summary>
    GeluTanh,
}
