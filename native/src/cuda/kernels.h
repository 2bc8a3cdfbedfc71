// Launchers of the CUDA kernels (elementwise, normalization, attention, rope, convolution .cu), callable
// from host C++ code. Operands are
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

void launch_layer_norm(const NormArgs& args, cudaStream_t stream);
void launch_rms_norm(const NormArgs& args, cudaStream_t stream);
void launch_softmax(const TensorDesc& x, const TensorDesc& out, cudaStream_t stream);
// Group norm of args.x, or with statistics_only its per-(sample, group) mean and Σ(x − mean)² into
// args.stats; with args.stats given (and not statistics_only) it normalises with (mean, 1/√(var + eps)).
void launch_group_norm(const NormArgs& args, bool statistics_only, cudaStream_t stream);
// The direct convolution (any shape), and the two halves of the GEMM form around cuBLASLt: the input
// patches of output rows [first_row, first_row + rows) of one image as a row-major [rows·Wo, Cin·kh·kw]
// matrix in `patches`, and the bias added to those rows of out (args.bias must be present).
void launch_conv2d(const ConvArgs& args, cudaStream_t stream);
void launch_im2col(const ConvArgs& args, int64_t image, int64_t first_row, int64_t rows, void* patches, cudaStream_t stream);
void launch_channel_bias(const ConvArgs& args, int64_t image, int64_t first_row, int64_t rows, cudaStream_t stream);

// Attention: the tensor-core path where it applies (launch_flash_attention), else the generic one for
// any head dimension up to 512 (UNSUPPORTED beyond).
void launch_attention(const AttentionArgs& args, cudaStream_t stream);
// The tensor-core path (bf16/f16, head dims 64/72/96/128, no bias, aligned rows); false, with nothing
// launched, for anything else.
bool launch_flash_attention(const AttentionArgs& args, cudaStream_t stream);
void launch_attention_merge(const MergeArgs& args, cudaStream_t stream);

void launch_rope(const RopeArgs& args, cudaStream_t stream);

}  // namespace xdit::cuda
