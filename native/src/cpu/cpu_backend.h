// The CPU backend: host memory, kernels on the context's own thread pool, GEMM through OpenBLAS or
// the built-in kernel.
#pragma once

#include <memory>

#include "attention_tiles.h"
#include "core/backend.h"
#include "thread_pool.h"

namespace xdit::cpu {

class CpuBackend final : public Backend {
public:
    CpuBackend(int threads, bool use_openblas, const AttentionTiles& attention_tiles);

    void* allocate_block(size_t bytes) override;
    void free_block(void* block) override;
    const char* memory_name() const override { return "host"; }

    void write(void* destination, const void* source, size_t bytes) override;
    void read(void* destination, const void* source, size_t bytes) override;
    void memset(void* destination, int value, size_t bytes) override;
    void synchronize() override {}
    void check_wrappable(const void*) const override {}
    std::unique_ptr<Mark> mark() override;

    void fill(const TensorDesc& out, double value) override;
    void copy(const TensorDesc& src, const TensorDesc& out) override;
    void copy_from(Backend& source, const TensorDesc& src, const TensorDesc& out) override;
    void map(const MapOp& op) override;
    void gemm(const GemmProblem& problem) override;
    void reduce_abs_sum(const TensorDesc& a, const TensorDesc* b, const TensorDesc& out) override;
    void softmax(const TensorDesc& x, const TensorDesc& out) override;
    void layer_norm(const NormArgs& args) override;
    void rms_norm(const NormArgs& args) override;
    void group_norm(const NormArgs& args) override;
    void group_norm_stats(const NormArgs& args) override;
    void attention(const AttentionArgs& args) override;
    void attention_merge(const MergeArgs& args) override;
    void rope(const RopeArgs& args) override;
    void conv2d(const ConvArgs& args) override;

    ThreadPool& pool() { return pool_; }
    // Single-threaded f32 GEMM of one block (OpenBLAS or the built-in kernel), for kernels that
    // tile their own work (convolution).
    void block_gemm(const float* a, bool a_transposed, int64_t lda, const float* b, bool b_transposed, int64_t ldb,
                    float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k, bool accumulate) const;

private:
    void gemm_f32(const GemmProblem& problem);

    ThreadPool pool_;
    bool use_openblas_;
    const AttentionTiles* attention_tiles_;
};

// Applies bias and epilogue to rows [row_begin, row_end) of one f32 output matrix.
void apply_bias_epilogue(float* out, int64_t ldc, int64_t rows, int64_t n, const float* bias, int32_t epilogue);

// out (rows × n, leading dim ldc) (+)= a (rows × k) · bᵀ with b n × k, all f32, no threads: the
// built-in blocked kernel. accumulate adds to out instead of overwriting it.
void gemm_builtin(const float* a, bool a_transposed, int64_t lda, const float* b, bool b_transposed, int64_t ldb,
                  float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k, bool accumulate);

}  // namespace xdit::cpu
