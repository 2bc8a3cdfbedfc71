using XDit.Tensors;

namespace XDit.Parallel;

/// <summary>
/// The self-attention of a layer whose tokens on this rank are only part of the sequence it attends
/// over: a shard of a sequence split across ranks (<see cref="SequenceParallelAttention"/>), or one
/// PipeFusion patch attending to the layer's buffer of the whole sequence (<see cref="PatchAttention"/>).
/// </summary>
public interface ISequenceAttention
{
    /// <summary>q, k, v [B, s, H, D] of the local tokens → the attention of those queries over the whole
    /// sequence [B, s, H, Dv].</summary>
    Tensor Attend(Tensor q, Tensor k, Tensor v);
}
