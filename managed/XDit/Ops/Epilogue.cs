using XDit.Native;

namespace XDit.Ops;

/// <summary>What a GEMM applies to each output element after the bias.</summary>
public enum Epilogue
{
    None = XditEpilogue.None,
    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))</summary>
    GeluTanh = XditEpilogue.GeluTanh,
    /// <summary>0.5·x·(1 + erf(x/√2))</summary>
    GeluErf = XditEpilogue.GeluErf,
    /// <summary>x·sigmoid(x)</summary>
    Silu = XditEpilogue.Silu,
}
