// GEMM on CUDA through cuBLASLt: fp32 accumulation (CUBLAS_COMPUTE_32F, so f32 stays true fp32, no
// TF32), bias and GELU-tanh fused into cuBLASLt's epilogue, GELU-erf and SiLU applied by a kernel.
//
// cuBLASLt is column-major. Our row-major out[M, N] = a[M, K] · b[N, K]ᵀ is, read column-major,
// outᵀ[N, M] = b · aᵀ: cuBLASLt's "A" is our b and its "B" is our a.
#include <algorithm>
#include <cstdint>

#include "core/allocator.h"
#include "cublaslt.h"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "kernels.h"

namespace xdit::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

cudaDataType_t cuda_type(int32_t dtype) {
    switch (dtype) {
        case XDIT_DTYPE_F16: return CUDA_R_16F;
        case XDIT_DTYPE_BF16: return CUDA_R_16BF;
        default: return CUDA_R_32F;
    }
}

uint32_t alignment_of(const void* pointer, int64_t batch_stride_bytes) {
    const uint64_t bits = reinterpret_cast<uint64_t>(pointer) | uint64_t(batch_stride_bytes) | 256u;
    return static_cast<uint32_t>(bits & (~bits + 1));  // lowest set bit
}

class MatmulPlan {
public:
    MatmulPlan(const CublasLt& lt, const GemmProblem& p, int64_t batch, int64_t a_stride, int64_t b_stride,
               int64_t out_stride)
        : lt_(lt) {
        const cudaDataType_t type = cuda_type(p.dtype);
        const size_t element = p.dtype == XDIT_DTYPE_F32 ? 4 : 2;
        check_cublas(lt.desc_create(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
        const cublasOperation_t transa = p.b.transposed ? CUBLAS_OP_N : CUBLAS_OP_T;
        const cublasOperation_t transb = p.a.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
        set_desc(CUBLASLT_MATMUL_DESC_TRANSA, transa);
        set_desc(CUBLASLT_MATMUL_DESC_TRANSB, transb);
        cublasLtEpilogue_t epilogue = p.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
        if (p.epilogue == XDIT_EPILOGUE_GELU_TANH) epilogue = p.bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
        set_desc(CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
        if (p.bias) set_desc(CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias);

        const uint64_t m = uint64_t(p.m), n = uint64_t(p.n), k = uint64_t(p.k);
        make_layout(&lt_a_, type, transa == CUBLAS_OP_T ? k : n, transa == CUBLAS_OP_T ? n : k, p.b.leading_dimension,
                    batch, b_stride);
        make_layout(&lt_b_, type, transb == CUBLAS_OP_N ? k : m, transb == CUBLAS_OP_N ? m : k, p.a.leading_dimension,
                    batch, a_stride);
        make_layout(&lt_c_, type, n, m, p.out.leading_dimension, batch, out_stride);

        check_cublas(lt.preference_create(&preference_), "cublasLtMatmulPreferenceCreate");
        set_preference(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(kWorkspaceBytes));
        set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment_of(p.b.data, b_stride * element));
        set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment_of(p.a.data, a_stride * element));
        set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment_of(p.out.data, out_stride * element));
        set_preference(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment_of(p.out.data, out_stride * element));
    }

    ~MatmulPlan() {
        if (preference_) lt_.preference_destroy(preference_);
        if (lt_c_) lt_.layout_destroy(lt_c_);
        if (lt_b_) lt_.layout_destroy(lt_b_);
        if (lt_a_) lt_.layout_destroy(lt_a_);
        if (desc_) lt_.desc_destroy(desc_);
    }
    MatmulPlan(const MatmulPlan&) = delete;
    MatmulPlan& operator=(const MatmulPlan&) = delete;

    void run(cublasLtHandle_t handle, const GemmProblem& p, const void* a, const void* b, void* out, void* workspace,
             cudaStream_t stream) {
        cublasLtMatmulHeuristicResult_t heuristic{};
        int found = 0;
        check_cublas(lt_.heuristic(handle, desc_, lt_a_, lt_b_, lt_c_, lt_c_, preference_, 1, &heuristic, &found),
                     "cublasLtMatmulAlgoGetHeuristic");
        if (found == 0)
            fail(XDIT_STATUS_UNSUPPORTED, "cuBLASLt has no algorithm for this GEMM (M=" + std::to_string(p.m) +
                                              ", N=" + std::to_string(p.n) + ", K=" + std::to_string(p.k) +
                                              ", leading dimensions " + std::to_string(p.a.leading_dimension) + "/" +
                                              std::to_string(p.b.leading_dimension) + "/" +
                                              std::to_string(p.out.leading_dimension) + ")");
        const float alpha = 1.0f, beta = 0.0f;
        check_cublas(lt_.matmul(handle, desc_, &alpha, b, lt_a_, a, lt_b_, &beta, out, lt_c_, out, lt_c_,
                                &heuristic.algo, workspace, kWorkspaceBytes, stream),
                     "cublasLtMatmul");
    }

private:
    template <class V>
    void set_desc(cublasLtMatmulDescAttributes_t attribute, const V& value) {
        check_cublas(lt_.desc_set(desc_, attribute, &value, sizeof(value)), "cublasLtMatmulDescSetAttribute");
    }
    template <class V>
    void set_preference(cublasLtMatmulPreferenceAttributes_t attribute, const V& value) {
        check_cublas(lt_.preference_set(preference_, attribute, &value, sizeof(value)),
                     "cublasLtMatmulPreferenceSetAttribute");
    }
    void make_layout(cublasLtMatrixLayout_t* layout, cudaDataType_t type, uint64_t rows, uint64_t cols, int64_t ld,
                     int64_t batch, int64_t stride) {
        check_cublas(lt_.layout_create(layout, type, rows, cols, ld), "cublasLtMatrixLayoutCreate");
        if (batch > 1) {
            const int32_t count = static_cast<int32_t>(batch);
            check_cublas(lt_.layout_set(*layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)),
                         "cublasLtMatrixLayoutSetAttribute");
            check_cublas(lt_.layout_set(*layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)),
                         "cublasLtMatrixLayoutSetAttribute");
        }
    }

    const CublasLt& lt_;
    cublasLtMatmulDesc_t desc_ = nullptr;
    cublasLtMatrixLayout_t lt_a_ = nullptr, lt_b_ = nullptr, lt_c_ = nullptr;
    cublasLtMatmulPreference_t preference_ = nullptr;
};

}  // namespace

void CudaBackend::gemm(const GemmProblem& problem) {
    DeviceScope scope(device_);
    const GemmProblem p = problem.folded();
    if (p.k == 0) {  // an empty sum: out = epilogue(bias)
        const TensorDesc out = p.out_desc();
        launch_fill(out, 0.0, stream_);
        launch_bias_epilogue(out, p.bias, p.epilogue, stream_);
        return;
    }
    const CublasLt& lt = cublaslt();
    cublasLtHandle_t handle = lt_handle();
    ScratchBlock workspace(allocator(), kWorkspaceBytes);
    const size_t element = p.dtype == XDIT_DTYPE_F32 ? 4 : 2;
    const char* a = static_cast<const char*>(p.a.data);
    const char* b = static_cast<const char*>(p.b.data);
    char* out = static_cast<char*>(p.out.data);

    int64_t a_stride = 0, b_stride = 0, out_stride = 0;
    const int64_t batches = p.batch_count();
    if (batches == 1 || (p.uniform_batch(&a_stride, &b_stride, &out_stride) && batches <= INT32_MAX)) {
        MatmulPlan plan(lt, p, batches, a_stride, b_stride, out_stride);
        plan.run(handle, p, a, b, out, workspace.data(), stream_);
    } else {
        // Items sit at arbitrary offsets: promise cuBLASLt only element alignment (stride 1).
        MatmulPlan plan(lt, p, 1, 1, 1, 1);
        for (int64_t i = 0; i < batches; ++i) {
            int64_t ao, bo, oo;
            p.batch_offsets(i, &ao, &bo, &oo);
            plan.run(handle, p, a + ao * element, b + bo * element, out + oo * element, workspace.data(), stream_);
        }
    }
    if (p.epilogue == XDIT_EPILOGUE_GELU_ERF || p.epilogue == XDIT_EPILOGUE_SILU)
        launch_bias_epilogue(p.out_desc(), nullptr, p.epilogue, stream_);
}

}  // namespace xdit::cuda
