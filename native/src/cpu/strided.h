// Runs an elementwise body over K strided tensors of one shape. The body sees runs along the
// innermost (coalesced) dimension: body(n, pointers, inner_strides).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/tensor_desc.h"
#include "thread_pool.h"

namespace xdit::cpu {

// The coalesced iteration space of K tensors.
template <size_t K>
struct StridedSpace {
    int rank = 0;
    int64_t shape[XDIT_MAX_RANK] = {};
    int64_t strides[K][XDIT_MAX_RANK] = {};
    std::array<char*, K> data{};
    std::array<int64_t, K> element_size{};
    int64_t total = 1;

    explicit StridedSpace(const std::array<const TensorDesc*, K>& tensors) {
        const TensorDesc& first = *tensors[0];
        int64_t* stride_rows[K];
        for (int d = 0; d < first.rank; ++d) shape[d] = first.shape[d];
        for (size_t t = 0; t < K; ++t) {
            for (int d = 0; d < first.rank; ++d) strides[t][d] = tensors[t]->strides[d];
            stride_rows[t] = strides[t];
            data[t] = static_cast<char*>(tensors[t]->data);
            element_size[t] = int64_t(tensors[t]->element_size());
        }
        rank = coalesce_dims(first.rank, shape, stride_rows, static_cast<int>(K));
        for (int d = 0; d < rank; ++d) total *= shape[d];
    }

    // Calls body on the runs covering flat element indices [begin, end), in order.
    template <class Body>
    void for_range(int64_t begin, int64_t end, Body&& body) const {
        int64_t coordinate[XDIT_MAX_RANK];
        int64_t rest = begin;
        for (int d = rank - 1; d >= 0; --d) {
            coordinate[d] = rest % shape[d];
            rest /= shape[d];
        }
        std::array<char*, K> base;
        std::array<int64_t, K> inner_stride;
        for (size_t t = 0; t < K; ++t) inner_stride[t] = strides[t][rank - 1];
        const int64_t inner = shape[rank - 1];
        int64_t index = begin;
        while (index < end) {
            const int64_t run = std::min(end - index, inner - coordinate[rank - 1]);
            for (size_t t = 0; t < K; ++t) {
                int64_t offset = 0;
                for (int d = 0; d < rank; ++d) offset += coordinate[d] * strides[t][d];
                base[t] = data[t] + offset * element_size[t];
            }
            body(run, base, inner_stride);
            index += run;
            coordinate[rank - 1] += run;
            for (int d = rank - 1; d > 0 && coordinate[d] == shape[d]; --d) {
                coordinate[d] = 0;
                ++coordinate[d - 1];
            }
        }
    }
};

// Splits the elements over the pool's threads; bodies for different ranges run concurrently.
template <size_t K, class Body>
void for_each_strided(ThreadPool& pool, const std::array<const TensorDesc*, K>& tensors, Body&& body) {
    const StridedSpace<K> space(tensors);
    pool.parallel_for(space.total, 1 << 14, [&](int64_t begin, int64_t end) { space.for_range(begin, end, body); });
}

}  // namespace xdit::cpu
