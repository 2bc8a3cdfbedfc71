// A validated GEMM `out = epilogue(a · bᵀ + bias)` in BLAS terms, shared by both backends.
#pragma once

#include <cstdint>

#include "tensor_desc.h"

namespace xdit {

// One row-major or column-major matrix operand: element (r, c) is at data + r·row_stride + c·col_stride
// where exactly one of the two strides is 1 (the other is the leading dimension).
struct MatrixOperand {
    void* data = nullptr;
    bool transposed = false;  // column-major storage: col_stride is the leading dimension
    int64_t leading_dimension = 0;
};

struct GemmProblem {
    int32_t dtype = XDIT_DTYPE_F32;
    int64_t m = 0, n = 0, k = 0;
    MatrixOperand a, b, out;  // a is [M, K], b is [N, K], out is [M, N] (never transposed)
    const void* bias = nullptr;  // [N] contiguous, or null
    int32_t epilogue = XDIT_EPILOGUE_NONE;

    // Batch dims (of out; a and b have the same, or b has none), any strides.
    int batch_rank = 0;
    int64_t batch_shape[XDIT_MAX_RANK] = {};
    int64_t a_batch_strides[XDIT_MAX_RANK] = {};
    int64_t b_batch_strides[XDIT_MAX_RANK] = {};
    int64_t out_batch_strides[XDIT_MAX_RANK] = {};

    int64_t batch_count() const;
    // Element offsets of batch item `index` (row-major order over batch_shape).
    void batch_offsets(int64_t index, int64_t* a_offset, int64_t* b_offset, int64_t* out_offset) const;
    // If the batch offsets are index·stride for single strides, returns true and the strides.
    bool uniform_batch(int64_t* a_stride, int64_t* b_stride, int64_t* out_stride) const;

    // The same product with the batch folded into the rows of a and out when b is shared by every
    // batch item and the items' rows follow each other in a and out (the common [B, S, C] · Wᵀ
    // case): one large GEMM instead of many small ones. Returns *this unchanged otherwise.
    GemmProblem folded() const;

    // out as a descriptor [batch..., M, N].
    TensorDesc out_desc() const;
};

GemmProblem make_gemm_problem(const xdit_tensor* a, const xdit_tensor* b, const xdit_tensor* bias,
                              const xdit_tensor* out, int32_t epilogue);

}  // namespace xdit
