// Argument records of the ops whose operands are validated by the C entry points and executed by a
// backend. Optional operands are std::nullopt.
#pragma once

#include <array>
#include <optional>

#include "tensor_desc.h"

namespace xdit {

// Pointwise maps: out = f(inputs...) with parameters p0, p1. All operands share out's shape.
enum class MapKind {
    Binary,   // code = xdit_binary_op; a (op) b
    Unary,    // code = xdit_unary_op; op(a)
    Affine,   // p0·a + p1
    Clamp,    // min(max(a, p0), p1)
    Lerp,     // a + p0·(b − a)
    AddMul,   // a + b·c
    Gated,    // code = xdit_unary_op; op(a)·b
};

struct MapOp {
    MapKind kind = MapKind::Binary;
    int32_t code = 0;
    double p0 = 0, p1 = 0;
    int arity = 1;  // inputs used
    std::array<TensorDesc, 3> inputs{};
    TensorDesc out{};
};

struct NormArgs {
    TensorDesc x, out;
    std::optional<TensorDesc> weight, bias, scale, shift;
    double eps = 1e-6;
    int32_t groups = 1;  // group norm only
    // Group norm only: f32 [N, groups, 2]. group_norm_stats writes (mean, M2) into it; group_norm reads
    // (mean, 1/√(var + eps)) from it when given instead of computing them.
    std::optional<TensorDesc> stats;
};

struct AttentionArgs {
    TensorDesc q, k, v, out;
    std::optional<TensorDesc> key_mask, bias, lse;
    float scale = 1.0f;
};

struct MergeArgs {
    TensorDesc out_a, lse_a, out_b, lse_b, out, lse;
};

struct RopeArgs {
    TensorDesc x, cos, sin, out;
    bool interleaved = true;
};

struct ConvArgs {
    TensorDesc x, weight, out;
    std::optional<TensorDesc> bias;
    int32_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

}  // namespace xdit
