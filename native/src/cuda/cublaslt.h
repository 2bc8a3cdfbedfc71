// cuBLASLt, loaded at run time (dlopen) with the toolkit's own declarations: the library then loads
// on machines without CUDA, and a missing cuBLASLt only fails GEMMs, with a message saying so.
#pragma once

#include <cublasLt.h>

namespace xdit::cuda {

struct CublasLt {
    decltype(&cublasLtCreate) create = nullptr;
    decltype(&cublasLtDestroy) destroy = nullptr;
    decltype(&cublasLtMatmul) matmul = nullptr;
    decltype(&cublasLtMatmulDescCreate) desc_create = nullptr;
    decltype(&cublasLtMatmulDescDestroy) desc_destroy = nullptr;
    decltype(&cublasLtMatmulDescSetAttribute) desc_set = nullptr;
    decltype(&cublasLtMatrixLayoutCreate) layout_create = nullptr;
    decltype(&cublasLtMatrixLayoutDestroy) layout_destroy = nullptr;
    decltype(&cublasLtMatrixLayoutSetAttribute) layout_set = nullptr;
    decltype(&cublasLtMatmulPreferenceCreate) preference_create = nullptr;
    decltype(&cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
    decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set = nullptr;
    decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic = nullptr;
};

// The process-wide cuBLASLt; throws XDIT_STATUS_UNAVAILABLE listing every path tried. Looks at
// $XDIT_CUBLASLT_LIB, the soname of the toolkit it was built with, and the toolkit's lib folder.
const CublasLt& cublaslt();

// Throws DEVICE_ERROR for a failed cuBLASLt call.
void check_cublas(cublasStatus_t status, const char* what);

}  // namespace xdit::cuda
