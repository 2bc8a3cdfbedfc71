#include "cublaslt.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/dynamic_library.h"
#include "core/error.h"

#define XDIT_STRINGIFY_(x) #x
#define XDIT_STRINGIFY(x) XDIT_STRINGIFY_(x)

namespace xdit::cuda {

namespace {

struct Loaded {
    CublasLt api;
    std::string error;  // empty when loaded
};

Loaded load() {
    Loaded result;
    const std::string soname = "libcublasLt.so." XDIT_STRINGIFY(CUBLAS_VER_MAJOR);
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("XDIT_CUBLASLT_LIB"); env && *env) candidates.emplace_back(env);
    candidates.push_back(soname);
#ifdef XDIT_CUDA_LIBRARY_DIR
    candidates.push_back(std::string(XDIT_CUDA_LIBRARY_DIR) + "/" + soname);
#endif
    candidates.push_back("/usr/local/cuda/lib64/" + soname);
    std::string tried;
    for (const std::string& path : candidates) {
        void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) {
            tried += "\n  " + path + ": " + dlerror();
            continue;
        }
        CublasLt& a = result.api;
        std::string missing;
        bind_symbol(handle, "cublasLtCreate", a.create, missing);
        bind_symbol(handle, "cublasLtDestroy", a.destroy, missing);
        bind_symbol(handle, "cublasLtMatmul", a.matmul, missing);
        bind_symbol(handle, "cublasLtMatmulDescCreate", a.desc_create, missing);
        bind_symbol(handle, "cublasLtMatmulDescDestroy", a.desc_destroy, missing);
        bind_symbol(handle, "cublasLtMatmulDescSetAttribute", a.desc_set, missing);
        bind_symbol(handle, "cublasLtMatrixLayoutCreate", a.layout_create, missing);
        bind_symbol(handle, "cublasLtMatrixLayoutDestroy", a.layout_destroy, missing);
        bind_symbol(handle, "cublasLtMatrixLayoutSetAttribute", a.layout_set, missing);
        bind_symbol(handle, "cublasLtMatmulPreferenceCreate", a.preference_create, missing);
        bind_symbol(handle, "cublasLtMatmulPreferenceDestroy", a.preference_destroy, missing);
        bind_symbol(handle, "cublasLtMatmulPreferenceSetAttribute", a.preference_set, missing);
        bind_symbol(handle, "cublasLtMatmulAlgoGetHeuristic", a.heuristic, missing);
        if (missing.empty()) return result;  // stays loaded for the life of the process
        tried += "\n  " + path + ": lacks " + missing;
        dlclose(handle);
        result.api = CublasLt{};
    }
    result.error = "cuBLASLt could not be loaded (needed for GEMM on CUDA); tried:" + tried +
                   "\nInstall the CUDA toolkit's cuBLAS, or set XDIT_CUBLASLT_LIB to libcublasLt's path.";
    return result;
}

}  // namespace

const CublasLt& cublaslt() {
    static const Loaded loaded = load();
    if (!loaded.error.empty()) fail(XDIT_STATUS_UNAVAILABLE, loaded.error);
    return loaded.api;
}

void check_cublas(cublasStatus_t status, const char* what) {
    if (status == CUBLAS_STATUS_SUCCESS) return;
    const char* name = "unknown cuBLAS status";
    switch (status) {
        case CUBLAS_STATUS_NOT_INITIALIZED: name = "CUBLAS_STATUS_NOT_INITIALIZED"; break;
        case CUBLAS_STATUS_ALLOC_FAILED: name = "CUBLAS_STATUS_ALLOC_FAILED"; break;
        case CUBLAS_STATUS_INVALID_VALUE: name = "CUBLAS_STATUS_INVALID_VALUE"; break;
        case CUBLAS_STATUS_ARCH_MISMATCH: name = "CUBLAS_STATUS_ARCH_MISMATCH"; break;
        case CUBLAS_STATUS_EXECUTION_FAILED: name = "CUBLAS_STATUS_EXECUTION_FAILED"; break;
        case CUBLAS_STATUS_INTERNAL_ERROR: name = "CUBLAS_STATUS_INTERNAL_ERROR"; break;
        case CUBLAS_STATUS_NOT_SUPPORTED: name = "CUBLAS_STATUS_NOT_SUPPORTED"; break;
        default: break;
    }
    fail(status == CUBLAS_STATUS_ALLOC_FAILED ? XDIT_STATUS_OUT_OF_MEMORY : XDIT_STATUS_DEVICE_ERROR,
         std::string(what) + ": " + name + " (" + std::to_string(int(status)) + ")");
}

}  // namespace xdit::cuda
