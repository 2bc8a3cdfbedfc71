// Row-wise access to K tensors of one shape: the last dimension is a row, every combination of the
// other indices is one row. Norms and softmax work row by row; rows may have any strides.
#pragma once

#include <array>
#include <cstdint>

#include "core/tensor_desc.h"

namespace xdit::cpu {

template <size_t K>
class Rows {
public:
    explicit Rows(const std::array<const TensorDesc*, K>& tensors) {
        const TensorDesc& first = *tensors[0];
        outer_rank_ = first.rank - 1;
        length_ = first.rank > 0 ? first.dim(-1) : 1;
        count_ = 1;
        for (int d = 0; d < outer_rank_; ++d) {
            shape_[d] = first.shape[d];
            count_ *= shape_[d];
        }
        for (size_t t = 0; t < K; ++t) {
            const TensorDesc& x = *tensors[t];
            for (int d = 0; d < outer_rank_; ++d) strides_[t][d] = x.strides[d];
            inner_stride_[t] = x.rank > 0 ? x.stride(-1) : 1;
            data_[t] = static_cast<char*>(x.data);
            element_size_[t] = int64_t(x.element_size());
        }
    }

    int64_t count() const { return count_; }
    int64_t length() const { return length_; }
    int64_t inner_stride(size_t t) const { return inner_stride_[t]; }

    // Start of row `index` in tensor t.
    template <class T>
    T* row(size_t t, int64_t index) const {
        int64_t offset = 0;
        for (int d = outer_rank_ - 1; d >= 0; --d) {
            offset += (index % shape_[d]) * strides_[t][d];
            index /= shape_[d];
        }
        return reinterpret_cast<T*>(data_[t] + offset * element_size_[t]);
    }

private:
    int outer_rank_ = 0;
    int64_t count_ = 1, length_ = 1;
    int64_t shape_[XDIT_MAX_RANK] = {};
    int64_t strides_[K][XDIT_MAX_RANK] = {};
    std::array<int64_t, K> inner_stride_{};
    std::array<char*, K> data_{};
    std::array<int64_t, K> element_size_{};
};

}  // namespace xdit::cpu
