using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The joint attention of an MMDiT pass (SD3, Flux) whose local tokens are only part of the joint
/// sequence: a sequence-parallel shard (<see cref="JointSequenceParallel"/>) or a PipeFusion band
/// (<see cref="PatchAttention"/>). Local sequences keep the model's order: [text, image] for Flux,
/// [image, text] for SD3.
/// </summary>
public interface IJointSequenceAttention
{
    /// <summary>Whether this pass carries the text stream. PipeFusion bands after the first of a step do
    /// not: their image queries attend to the text keys and values the first band left, as xDiT reuses
    /// the first patch's text states, and the text stream is not computed again.</summary>
    bool CarriesText { get; }

    /// <summary>q [B, q tokens, H, D] and k, v [B, local tokens, H, D] (text and image in the model's order
    /// when <see cref="CarriesText"/>, the image alone otherwise) → the attention of q's tokens over the
    /// whole joint sequence [B, q tokens, H, Dv].</summary>
    Tensor Attend(Tensor q, Tensor k, Tensor v);

    /// <summary>Self-attention of the image tokens alone (SD3.5's dual-attention blocks).</summary>
    Tensor AttendImage(Tensor q, Tensor k, Tensor v);
}
