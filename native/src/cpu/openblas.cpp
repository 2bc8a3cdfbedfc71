#include "openblas.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

namespace xdit {

namespace {

OpenBlas load() {
    OpenBlas blas;
    const char* candidates[] = {std::getenv("XDIT_OPENBLAS_LIB"), "libopenblas.so.0", "libopenblas.so"};
    for (const char* name : candidates) {
        if (name == nullptr || *name == '\0') continue;
        void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr) continue;
        auto sgemm = reinterpret_cast<OpenBlas::sgemm_fn>(dlsym(handle, "cblas_sgemm"));
        auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(handle, "openblas_set_num_threads"));
        if (sgemm == nullptr) {
            dlclose(handle);
            continue;
        }
        if (set_threads != nullptr) set_threads(1);
        blas.sgemm = sgemm;
        blas.path = name;
        return blas;  // kept loaded for the life of the process
    }
    return blas;
}

}  // namespace

const OpenBlas* openblas() {
    static const OpenBlas blas = load();
    return blas.sgemm != nullptr ? &blas : nullptr;
}

}  // namespace xdit
