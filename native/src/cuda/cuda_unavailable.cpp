// The CUDA entry points of a CPU-only build: CUDA contexts and NCCL communicators are refused with a clear message.
#include "comm/nccl_comm.h"
#include "core/backend.h"
#include "core/error.h"

namespace xdit {

std::unique_ptr<Backend> create_cuda_backend(xdit_context_options&) {
    fail(XDIT_STATUS_UNAVAILABLE,
         "this libxdit_native was built without CUDA; rebuild with nvcc available and -DXDIT_CUDA=ON");
}

xdit_comm* create_nccl_comm(std::shared_ptr<Context>, const uint8_t*, int, int, double) {
    fail(XDIT_STATUS_UNAVAILABLE, "this libxdit_native was built without CUDA, so without NCCL; rebuild with -DXDIT_CUDA=ON");
}

int cuda_device_count() { return 0; }
bool cuda_compiled() { return false; }
int cuda_runtime_version() { return 0; }

}  // namespace xdit
