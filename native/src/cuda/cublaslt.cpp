#include "cublaslt.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

#define XDIT_STRINGIFY_(x) #x
#define XDIT_STRINGIFY(x) XDIT_STRINGIFY_(x)

namespace xdit::cuda {

namespace {

struct Loaded {
    CublasLt api;
    std::string error;  // empty when loaded
};

template <class Fn>
bool resolve(void* handle, const char* name, Fn& target) {
    target = reinterpret_cast<Fn>(dlsym(handle, name));
    return target != nullptr;
}

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
        const bool ok = resolve(handle, "cublasLtCreate", a.create) && resolve(handle, "cublasLtDestroy", a.destroy) &&
                        resolve(handle, "cublasLtMatmul", a.matmul) &&
                        resolve(handle, "cublasLtMatmulDescCreate", a.desc_create) &&
                        resolve(handle, "cublasLtMatmulDescDestroy", a.desc_destroy) &&
                        resolve(handle, "cublasLtMatmulDescSetAttribute", a.desc_set) &&
                        resolve(handle, "cublasLtMatrixLayoutCreate", a.layout_create) &&
                        resolve(handle, "cublasLtMatrixLayoutDestroy", a.layout_destroy) &&
                        resolve(handle, "cublasLtMatrixLayoutSetAttribute", a.layout_set) &&
                        resolve(handle, "cublasLtMatmulPreferenceCreate", a.preference_create) &&
                        resolve(handle, "cublasLtMatmulPreferenceDestroy", a.preference_destroy) &&
                        resolve(handle, "cublasLtMatmulPreferenceSetAttribute", a.preference_set) &&
                        resolve(handle, "cublasLtMatmulAlgoGetHeuristic", a.heuristic);
        if (ok) return result;  // stays loaded for the life of the process
        tried += "\n  " + path + ": a cuBLASLt function is missing";
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
