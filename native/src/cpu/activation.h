// Scalar activations shared by the GEMM epilogue and the pointwise ops, so that a fused epilogue
// and the separate op compute the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

#include "xdit/xdit.h"

namespace xdit::cpu {

inline float gelu_tanh(float x) {
    return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

inline float gelu_erf(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f)); }

inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// op is an xdit_unary_op.
inline float unary(int32_t op, float x) {
    switch (op) {
        case XDIT_UNARY_GELU_TANH: return gelu_tanh(x);
        case XDIT_UNARY_GELU_ERF: return gelu_erf(x);
        case XDIT_UNARY_SILU: return silu(x);
        case XDIT_UNARY_EXP: return std::exp(x);
        case XDIT_UNARY_ABS: return std::fabs(x);
        case XDIT_UNARY_NEG: return -x;
        case XDIT_UNARY_SIN: return static_cast<float>(std::sin(static_cast<double>(x)));
        case XDIT_UNARY_COS: return static_cast<float>(std::cos(static_cast<double>(x)));
        default: return x;
    }
}

// epilogue is an xdit_epilogue.
inline float epilogue(int32_t epilogue, float x) {
    switch (epilogue) {
        case XDIT_EPILOGUE_GELU_TANH: return gelu_tanh(x);
        case XDIT_EPILOGUE_GELU_ERF: return gelu_erf(x);
        case XDIT_EPILOGUE_SILU: return silu(x);
        default: return x;
    }
}

}  // namespace xdit::cpu
