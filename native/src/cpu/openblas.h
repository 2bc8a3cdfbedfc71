// OpenBLAS, loaded at run time: the library must load (and fall back to its own GEMM) on machines
// without it, such as the GPU machines. Only the two functions the engine needs are declared.
#pragma once

namespace xdit {

// CBLAS enum values (cblas.h): they are part of OpenBLAS's stable C ABI.
enum CblasOrder { CblasRowMajor = 101 };
enum CblasTranspose { CblasNoTrans = 111, CblasTrans = 112 };

struct OpenBlas {
    using sgemm_fn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a,
                              int lda, const float* b, int ldb, float beta, float* c, int ldc);
    sgemm_fn sgemm = nullptr;
    const char* path = nullptr;  // the file that was loaded
};

// The process-wide OpenBLAS, or nullptr when it cannot be loaded. Looks at $XDIT_OPENBLAS_LIB, then
// libopenblas.so.0 and libopenblas.so. OpenBLAS is switched to one thread: each context splits its
// GEMMs over its own thread budget, so that in-process ranks never oversubscribe the cores.
const OpenBlas* openblas();

}  // namespace xdit
