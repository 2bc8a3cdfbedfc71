// What every CUDA kernel file shares: element access in fp32 for the float storage types, the
// strided index arithmetic of up to K tensors of one shape (coalesced on the host, passed by value),
// the row view the norms and softmax use, and the launch helpers.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <string>
#include <type_traits>

#include "core/dtype.h"
#include "core/tensor_desc.h"
#include "cuda_check.h"

namespace xdit::cuda {

template <int K>
struct Indexer {
    int rank;
    int64_t shape[XDIT_MAX_RANK];
    int64_t strides[K][XDIT_MAX_RANK];

    __device__ void offsets(int64_t index, int64_t* out) const {
        for (int t = 0; t < K; ++t) out[t] = 0;
        for (int d = rank - 1; d >= 0; --d) {
            const int64_t coordinate = index % shape[d];
            index /= shape[d];
            for (int t = 0; t < K; ++t) out[t] += coordinate * strides[t][d];
        }
    }
};

template <int K>
Indexer<K> make_indexer(const std::array<const TensorDesc*, K>& tensors, int64_t* total) {
    Indexer<K> ix{};
    int64_t* rows[K];
    for (int t = 0; t < K; ++t) {
        for (int d = 0; d < tensors[0]->rank; ++d) ix.strides[t][d] = tensors[t]->strides[d];
        rows[t] = ix.strides[t];
    }
    for (int d = 0; d < tensors[0]->rank; ++d) ix.shape[d] = tensors[0]->shape[d];
    ix.rank = coalesce_dims(tensors[0]->rank, ix.shape, rows, K);
    *total = 1;
    for (int d = 0; d < ix.rank; ++d) *total *= ix.shape[d];
    return ix;
}

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t total) { return static_cast<unsigned>((total + kThreads - 1) / kThreads); }

inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Element conversions through float (floats), int64 (integers) or bool.
template <class T> __device__ inline float load_float(T v) { return static_cast<float>(v); }
template <> __device__ inline float load_float(__half v) { return __half2float(v); }
template <> __device__ inline float load_float(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ inline float load_float(bool v) { return v ? 1.0f : 0.0f; }

template <class T> __device__ inline T store_float(float v) { return static_cast<T>(v); }
template <> __device__ inline __half store_float(float v) { return __float2half_rn(v); }
template <> __device__ inline __nv_bfloat16 store_float(float v) { return __float2bfloat16_rn(v); }

template <class T> constexpr bool is_float_v =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

template <class Fn>
void dispatch_float(int32_t dtype, Fn&& fn) {
    switch (dtype) {
        case XDIT_DTYPE_F32: fn(float{}); return;
        case XDIT_DTYPE_F16: fn(__half{}); return;
        case XDIT_DTYPE_BF16: fn(__nv_bfloat16{}); return;
        default: invalid(std::string("expected a float dtype, got ") + dtype_name(dtype));
    }
}


// Rows of K tensors of one shape: the last dimension is a row, every combination of the other indices
// one row (as the CPU's rows.h); `rows` indexes the row starts, `inner` is each tensor's last stride.
template <int K>
struct RowIndexer {
    Indexer<K> rows;
    int64_t inner[K];
    int64_t length;
    int64_t count;
};

template <int K>
RowIndexer<K> make_row_indexer(const std::array<const TensorDesc*, K>& tensors) {
    RowIndexer<K> r{};
    const TensorDesc& first = *tensors[0];
    r.length = first.rank > 0 ? first.dim(-1) : 1;
    r.rows.rank = first.rank > 0 ? first.rank - 1 : 0;
    for (int d = 0; d < r.rows.rank; ++d) r.rows.shape[d] = first.shape[d];
    for (int t = 0; t < K; ++t) {
        for (int d = 0; d < r.rows.rank; ++d) r.rows.strides[t][d] = tensors[t]->strides[d];
        r.inner[t] = tensors[t]->rank > 0 ? tensors[t]->stride(-1) : 1;
    }
    r.count = 1;
    for (int d = 0; d < r.rows.rank; ++d) r.count *= r.rows.shape[d];
    return r;
}

}  // namespace xdit::cuda
