// Validation and description of xdit_tensor descriptors: every op checks its operands here, so that
// errors name the operand, its dtype and its shape in one consistent form.
#pragma once

#include <cstdint>
#include <string>

#include "xdit/xdit.h"

namespace xdit {

// A checked copy of a descriptor with the helpers kernels need.
struct TensorDesc {
    void* data = nullptr;
    int32_t dtype = XDIT_DTYPE_F32;
    int32_t rank = 0;
    int64_t shape[XDIT_MAX_RANK] = {};
    int64_t strides[XDIT_MAX_RANK] = {};

    int64_t numel() const;
    bool is_contiguous() const;   // row-major with no gaps (size-1 dims may take any stride)
    bool has_zero_stride() const; // a broadcast dim of size > 1
    int64_t dim(int i) const { return shape[i < 0 ? rank + i : i]; }
    int64_t stride(int i) const { return strides[i < 0 ? rank + i : i]; }
    size_t element_size() const;
    std::string shape_string() const;             // "[2, 3, 4]"
    std::string describe(const char* name) const; // "a (f32 [2, 3])"
};

// Validates and copies a descriptor: non-null, dtype known, rank 0..6, shape >= 0, strides >= 0,
// data non-null when the tensor has elements.
TensorDesc check_tensor(const xdit_tensor* tensor, const char* name);

bool same_shape(const TensorDesc& a, const TensorDesc& b);

// Fails with "<op>: <a> and <b> must have the same shape" style messages.
void require_same_shape(const TensorDesc& a, const char* a_name, const TensorDesc& b, const char* b_name);
void require_same_dtype(const TensorDesc& a, const char* a_name, const TensorDesc& b, const char* b_name);
void require_float(const TensorDesc& t, const char* name);

// An output written element by element must not have two indices that map to one address.
void require_writable(const TensorDesc& out, const char* name);

// Merges adjacent dims that are contiguous with each other in *every* given tensor, drops size-1
// dims, and returns the new rank (>= 1). Lets strided kernels run long inner loops.
int coalesce_dims(int rank, int64_t* shape, int64_t* const* strides, int count);

}  // namespace xdit
