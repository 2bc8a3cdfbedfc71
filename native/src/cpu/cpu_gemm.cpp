// CPU GEMM: out = epilogue(a · bᵀ + bias). The context's threads split the work into row blocks of
// each batch item; each block is one single-threaded OpenBLAS call (or the built-in kernel) followed
// by the bias and epilogue while the rows are still in cache.
#include <algorithm>
#include <vector>

#include "core/allocator.h"
#include "activation.h"
#include "cpu_backend.h"
#include "element.h"
#include "openblas.h"

namespace xdit::cpu {

namespace {

// Element (r, c) of a matrix operand.
inline int64_t element_index(bool transposed, int64_t ld, int64_t r, int64_t c) {
    return transposed ? r + c * ld : r * ld + c;
}

}  // namespace

void apply_bias_epilogue(float* out, int64_t ldc, int64_t rows, int64_t n, const float* bias, int32_t epilogue) {
    if (bias == nullptr && epilogue == XDIT_EPILOGUE_NONE) return;
    for (int64_t r = 0; r < rows; ++r) {
        float* row = out + r * ldc;
        if (bias != nullptr)
            for (int64_t c = 0; c < n; ++c) row[c] += bias[c];
        if (epilogue != XDIT_EPILOGUE_NONE)
            for (int64_t c = 0; c < n; ++c) row[c] = cpu::epilogue(epilogue, row[c]);
    }
}

// Blocked kernel: a K-by-NB panel of b is packed so that the innermost loop runs over contiguous
// output columns, four rows of a at a time (the compiler vectorises the column loop). Compiled
// twice, for AVX2+FMA and for baseline x86-64, and picked at load time.
__attribute__((target_clones("arch=haswell", "default")))
void gemm_builtin(const float* a, bool a_transposed, int64_t lda, const float* b, bool b_transposed, int64_t ldb,
                  float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k, bool accumulate) {
    constexpr int64_t NB = 64, KB = 256;
    alignas(64) float panel[KB * NB];
    if (!accumulate)
        for (int64_t r = 0; r < rows; ++r) std::fill(out + r * ldc, out + r * ldc + n, 0.0f);
    for (int64_t j0 = 0; j0 < n; j0 += NB) {
        const int64_t nb = std::min(NB, n - j0);
        for (int64_t k0 = 0; k0 < k; k0 += KB) {
            const int64_t kb = std::min(KB, k - k0);
            for (int64_t kk = 0; kk < kb; ++kk)
                for (int64_t jj = 0; jj < nb; ++jj)
                    panel[kk * NB + jj] = b[element_index(b_transposed, ldb, j0 + jj, k0 + kk)];
            int64_t r = 0;
            for (; r + 4 <= rows; r += 4) {
                float* o0 = out + r * ldc + j0;
                float* o1 = o0 + ldc;
                float* o2 = o1 + ldc;
                float* o3 = o2 + ldc;
                for (int64_t kk = 0; kk < kb; ++kk) {
                    const float x0 = a[element_index(a_transposed, lda, r, k0 + kk)];
                    const float x1 = a[element_index(a_transposed, lda, r + 1, k0 + kk)];
                    const float x2 = a[element_index(a_transposed, lda, r + 2, k0 + kk)];
                    const float x3 = a[element_index(a_transposed, lda, r + 3, k0 + kk)];
                    const float* p = panel + kk * NB;
                    for (int64_t jj = 0; jj < nb; ++jj) {
                        o0[jj] += x0 * p[jj];
                        o1[jj] += x1 * p[jj];
                        o2[jj] += x2 * p[jj];
                        o3[jj] += x3 * p[jj];
                    }
                }
            }
            for (; r < rows; ++r) {
                float* o = out + r * ldc + j0;
                for (int64_t kk = 0; kk < kb; ++kk) {
                    const float x = a[element_index(a_transposed, lda, r, k0 + kk)];
                    const float* p = panel + kk * NB;
                    for (int64_t jj = 0; jj < nb; ++jj) o[jj] += x * p[jj];
                }
            }
        }
    }
}

namespace {

void run_block_gemm(const OpenBlas* blas, const float* a, bool a_transposed, int64_t lda, const float* b,
                    bool b_transposed, int64_t ldb, float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k,
                    bool accumulate) {
    if (blas != nullptr)
        blas->sgemm(CblasRowMajor, a_transposed ? CblasTrans : CblasNoTrans, b_transposed ? CblasNoTrans : CblasTrans,
                    int(rows), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), accumulate ? 1.0f : 0.0f, out, int(ldc));
    else
        gemm_builtin(a, a_transposed, lda, b, b_transposed, ldb, out, ldc, rows, n, k, accumulate);
}

}  // namespace

void CpuBackend::block_gemm(const float* a, bool a_transposed, int64_t lda, const float* b, bool b_transposed,
                            int64_t ldb, float* out, int64_t ldc, int64_t rows, int64_t n, int64_t k,
                            bool accumulate) const {
    run_block_gemm(use_openblas_ ? openblas() : nullptr, a, a_transposed, lda, b, b_transposed, ldb, out, ldc, rows, n,
                   k, accumulate);
}

void CpuBackend::gemm_f32(const GemmProblem& problem) {
    const GemmProblem p = problem.folded();
    const int64_t batches = p.batch_count();
    // Enough row blocks for every thread to have a few, but no block under 16 rows.
    const int64_t wanted_tasks = int64_t(pool_.size()) * 4;
    const int64_t blocks_per_batch =
        std::max<int64_t>(1, std::min<int64_t>((wanted_tasks + batches - 1) / batches, (p.m + 15) / 16));
    const int64_t block_rows = (p.m + blocks_per_batch - 1) / blocks_per_batch;
    const OpenBlas* blas = use_openblas_ ? openblas() : nullptr;

    pool_.parallel_for(batches * blocks_per_batch, 1, [&](int64_t begin, int64_t end) {
        for (int64_t task = begin; task < end; ++task) {
            const int64_t batch = task / blocks_per_batch;
            const int64_t r0 = (task % blocks_per_batch) * block_rows;
            const int64_t rows = std::min(block_rows, p.m - r0);
            if (rows <= 0) continue;
            int64_t ao, bo, oo;
            p.batch_offsets(batch, &ao, &bo, &oo);
            const float* a = static_cast<const float*>(p.a.data) + ao +
                             (p.a.transposed ? r0 : r0 * p.a.leading_dimension);
            const float* b = static_cast<const float*>(p.b.data) + bo;
            float* out = static_cast<float*>(p.out.data) + oo + r0 * p.out.leading_dimension;
            if (p.k == 0) {
                for (int64_t r = 0; r < rows; ++r)
                    std::fill(out + r * p.out.leading_dimension, out + r * p.out.leading_dimension + p.n, 0.0f);
            } else {
                run_block_gemm(blas, a, p.a.transposed, p.a.leading_dimension, b, p.b.transposed, p.b.leading_dimension,
                               out, p.out.leading_dimension, rows, p.n, p.k, false);
            }
            apply_bias_epilogue(out, p.out.leading_dimension, rows, p.n, static_cast<const float*>(p.bias), p.epilogue);
        }
    });
}

void CpuBackend::gemm(const GemmProblem& p) {
    if (p.m > INT32_MAX || p.n > INT32_MAX || p.k > INT32_MAX || p.a.leading_dimension > INT32_MAX ||
        p.b.leading_dimension > INT32_MAX || p.out.leading_dimension > INT32_MAX)
        fail(XDIT_STATUS_UNSUPPORTED, "GEMM dimensions beyond 2^31 are not supported on the CPU");
    if (p.dtype == XDIT_DTYPE_F32) {
        gemm_f32(p);
        return;
    }
    // f16 / bf16: widen each batch item to f32 scratch, multiply, narrow the result.
    dispatch_float_dtype(p.dtype, [&](auto tag) {
        using T = decltype(tag);
        ScratchBlock a32(allocator(), size_t(p.m * p.k) * 4), b32(allocator(), size_t(p.n * p.k) * 4),
            out32(allocator(), size_t(p.m * p.n) * 4), bias32(allocator(), p.bias ? size_t(p.n) * 4 : 0);
        if (p.bias)
            for (int64_t c = 0; c < p.n; ++c) bias32.as<float>()[c] = to_float(static_cast<const T*>(p.bias)[c]);
        GemmProblem item = p;
        item.dtype = XDIT_DTYPE_F32;
        item.batch_rank = 0;
        item.a = {a32.data(), false, p.k};
        item.b = {b32.data(), false, p.k};
        item.out = {out32.data(), false, p.n};
        item.bias = p.bias ? bias32.data() : nullptr;
        for (int64_t batch = 0; batch < p.batch_count(); ++batch) {
            int64_t ao, bo, oo;
            p.batch_offsets(batch, &ao, &bo, &oo);
            const T* a = static_cast<const T*>(p.a.data) + ao;
            const T* b = static_cast<const T*>(p.b.data) + bo;
            T* out = static_cast<T*>(p.out.data) + oo;
            pool_.parallel_for(p.m, 64, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t c = 0; c < p.k; ++c)
                        a32.as<float>()[r * p.k + c] = to_float(a[element_index(p.a.transposed, p.a.leading_dimension, r, c)]);
            });
            pool_.parallel_for(p.n, 64, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t c = 0; c < p.k; ++c)
                        b32.as<float>()[r * p.k + c] = to_float(b[element_index(p.b.transposed, p.b.leading_dimension, r, c)]);
            });
            gemm_f32(item);
            pool_.parallel_for(p.m, 64, [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r)
                    for (int64_t c = 0; c < p.n; ++c)
                        out[r * p.out.leading_dimension + c] = from_float<T>(out32.as<float>()[r * p.n + c]);
            });
        }
    });
}

}  // namespace xdit::cpu
