#include "tensor_desc.h"

#include <algorithm>
#include <utility>
#include <sstream>

#include "dtype.h"
#include "error.h"

namespace xdit {

int64_t TensorDesc::numel() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
}

bool TensorDesc::is_contiguous() const {
    int64_t expected = 1;
    for (int i = rank - 1; i >= 0; --i) {
        if (shape[i] == 1) continue;
        if (strides[i] != expected) return false;
        expected *= shape[i];
    }
    return true;
}

bool TensorDesc::has_zero_stride() const {
    for (int i = 0; i < rank; ++i)
        if (shape[i] > 1 && strides[i] == 0) return true;
    return false;
}

size_t TensorDesc::element_size() const { return dtype_size(dtype); }

std::string TensorDesc::shape_string() const {
    std::ostringstream s;
    s << '[';
    for (int i = 0; i < rank; ++i) s << (i ? ", " : "") << shape[i];
    s << ']';
    return s.str();
}

std::string TensorDesc::describe(const char* name) const {
    return std::string(name) + " (" + dtype_name(dtype) + " " + shape_string() + ")";
}

TensorDesc check_tensor(const xdit_tensor* tensor, const char* name) {
    if (tensor == nullptr) invalid(std::string("tensor ") + name + " is null");
    TensorDesc d;
    d.data = tensor->data;
    d.dtype = tensor->dtype;
    d.rank = tensor->rank;
    if (!dtype_valid(d.dtype)) invalid(std::string(name) + ": unknown dtype " + std::to_string(d.dtype));
    if (d.rank < 0 || d.rank > XDIT_MAX_RANK)
        invalid(std::string(name) + ": rank " + std::to_string(d.rank) + " is outside 0.." +
                std::to_string(XDIT_MAX_RANK));
    // Bound the element count so that offset arithmetic cannot overflow int64.
    const int64_t limit = INT64_C(1) << 48;
    int64_t count = 1;
    for (int i = 0; i < d.rank; ++i) {
        d.shape[i] = tensor->shape[i];
        d.strides[i] = tensor->strides[i];
        if (d.shape[i] < 0) invalid(d.describe(name) + ": negative dimension " + std::to_string(i));
        if (d.strides[i] < 0 || d.strides[i] > limit)
            invalid(d.describe(name) + ": stride " + std::to_string(d.strides[i]) + " of dimension " +
                    std::to_string(i) + " is out of range");
        if (d.shape[i] > limit) invalid(d.describe(name) + ": dimension " + std::to_string(i) + " is too large");
        if (d.shape[i] == 0) count = 0;
        else count = count > limit / d.shape[i] ? limit + 1 : count * d.shape[i];  // saturates, never overflows
    }
    if (count > limit) invalid(d.describe(name) + ": too many elements");
    if (count > 0 && d.data == nullptr) invalid(d.describe(name) + ": data pointer is null");
    return d;
}

bool same_shape(const TensorDesc& a, const TensorDesc& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
        if (a.shape[i] != b.shape[i]) return false;
    return true;
}

void require_same_shape(const TensorDesc& a, const char* a_name, const TensorDesc& b, const char* b_name) {
    if (!same_shape(a, b))
        invalid(a.describe(a_name) + " and " + b.describe(b_name) + " must have the same shape");
}

void require_same_dtype(const TensorDesc& a, const char* a_name, const TensorDesc& b, const char* b_name) {
    if (a.dtype != b.dtype)
        invalid(a.describe(a_name) + " and " + b.describe(b_name) + " must have the same dtype");
}

void require_float(const TensorDesc& t, const char* name) {
    if (!dtype_is_float(t.dtype)) invalid(t.describe(name) + ": expected f32, f16 or bf16");
}

void require_writable(const TensorDesc& out, const char* name) {
    // Sort dims by stride; a layout is free of self-overlap when each stride is at least the extent
    // spanned by the smaller dims. This accepts every permutation of a dense or padded layout.
    int order[XDIT_MAX_RANK];
    int n = 0;
    for (int i = 0; i < out.rank; ++i)
        if (out.shape[i] > 1) order[n++] = i;
    for (int k = 1; k < n; ++k)  // insertion sort: at most six dims
        for (int j = k; j > 0 && out.strides[order[j]] < out.strides[order[j - 1]]; --j) std::swap(order[j], order[j - 1]);
    int64_t span = 1;
    for (int k = 0; k < n; ++k) {
        const int i = order[k];
        if (out.strides[i] < span)
            invalid(out.describe(name) + ": output strides overlap (dimension " + std::to_string(i) + ", stride " +
                    std::to_string(out.strides[i]) + ")");
        span = out.strides[i] * (out.shape[i] - 1) + span;
    }
}

int coalesce_dims(int rank, int64_t* shape, int64_t* const* strides, int count) {
    int out = 0;
    for (int i = 0; i < rank; ++i) {
        if (shape[i] == 1) continue;
        if (out > 0) {
            bool mergeable = true;
            for (int t = 0; t < count; ++t)
                if (strides[t][out - 1] != strides[t][i] * shape[i]) mergeable = false;
            if (mergeable) {
                shape[out - 1] *= shape[i];
                for (int t = 0; t < count; ++t) strides[t][out - 1] = strides[t][i];
                continue;
            }
        }
        shape[out] = shape[i];
        for (int t = 0; t < count; ++t) strides[t][out] = strides[t][i];
        ++out;
    }
    if (out == 0) {
        shape[0] = 1;
        for (int t = 0; t < count; ++t) strides[t][0] = 1;
        out = 1;
    }
    return out;
}

}  // namespace xdit
