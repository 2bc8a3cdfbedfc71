// The CPU backend: host memory, kernels on the context's own thread pool, GEMM through OpenBLAS or
// the built-in kernel.
#pragma once

#include <memory>

#include "core/backend.h"
#include "thread_pool.h"

namespace xdit::cpu {

class CpuBackend final : public Backend {
public:
    CpuBackend(int threads, bool use_openblas);

    void* allocate_block(size_t bytes) override;
    void free_block(void* block) override;
    const char* memory_name() const override { return "host"; }

    void write(void* destination, const void* source, size_t bytes) override;
    void read(void* destination, const void* source, size_t bytes) override;
    void memset(void* destination, int value, size_t bytes) override;
    void synchronize() override {}

    void fill(const TensorDesc& out, double value) override;
    void copy(const TensorDesc& src, const TensorDesc& out) override;
    void binary(xdit_binary_op op, const TensorDesc& a, const TensorDesc& b, const TensorDesc& out) override;
    void gemm(const GemmProblem& problem) override;

private:
    void gemm_f32(const GemmProblem& problem);

    ThreadPool pool_;
    bool use_openblas_;
};

// Applies bias and epilogue to rows [row_begin, row_end) of one f32 output matrix.
void apply_bias_epilogue(float* out, int64_t ldc, int64_t rows, int64_t n, const float* bias, int32_t epilogue);

// out (rows × n, leading dim ldc) = a (rows × k) · bᵀ with b n × k, all f32, no threads: the
// built-in blocked kernel.
void gemm_builtin(const float* a, bool a_transposed, int64_t lda, const float* b, bool b_transposed, int64_t ldb,
                  float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k);

}  // namespace xdit::cpu
