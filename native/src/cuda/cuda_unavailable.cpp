// The CUDA entry points of a CPU-only build: CUDA contexts are refused with a clear message.
#include "core/backend.h"
#include "core/error.h"

namespace xdit {

std::unique_ptr<Backend> create_cuda_backend(xdit_context_options&) {
    fail(XDIT_STATUS_UNAVAILABLE,
         "this libxdit_native was built without CUDA; rebuild with nvcc available and -DXDIT_CUDA=ON");
}

int cuda_device_count() { return 0; }
bool cuda_compiled() { return false; }
int cuda_runtime_version() { return 0; }

}  // namespace xdit
