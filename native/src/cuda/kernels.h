// Launchers of the CUDA kernels in elementwise.cu, callable from host C++ code. Operands are
// validated descriptors of device memory; every launch is asynchronous on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include "core/ops.h"
#include "core/tensor_desc.h"

namespace xdit::cuda {

void launch_fill(const TensorDesc& out, double value, cudaStream_t stream);
void launch_copy(const TensorDesc& src, const TensorDesc& out, cudaStream_t stream);
void launch_map(const MapOp& op, cudaStream_t stream);

// In place on a float tensor whose last dim has n columns: x = epilogue(x + bias[column]); bias is
// a contiguous [n] vector of the same dtype, or null.
void launch_bias_epilogue(const TensorDesc& out, const void* bias, int32_t epilogue, cudaStream_t stream);

}  // namespace xdit::cuda
