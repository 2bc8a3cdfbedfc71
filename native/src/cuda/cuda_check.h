// CUDA runtime errors as xdit::Error: an allocation failure becomes OUT_OF_MEMORY, everything else
// DEVICE_ERROR with the runtime's name for it and what was being done.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace xdit::cuda {

inline void check(cudaError_t status, const char* what) {
    if (status == cudaSuccess) return;
    const std::string message = std::string(what) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")";
    // Reported here, so cleared here: a non-sticky error left as the thread's last error would be blamed on
    // the next kernel launch (a sticky one stays, whatever this does).
    cudaGetLastError();
    fail(status == cudaErrorMemoryAllocation ? XDIT_STATUS_OUT_OF_MEMORY : XDIT_STATUS_DEVICE_ERROR, message);
}

// Makes `device` current for the scope: a context may be used from any host thread.
class DeviceScope {
public:
    explicit DeviceScope(int device) {
        check(cudaGetDevice(&previous_), "cudaGetDevice");
        if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceScope() {
        int current = previous_;
        if (cudaGetDevice(&current) == cudaSuccess && current != previous_) cudaSetDevice(previous_);
    }
    DeviceScope(const DeviceScope&) = delete;
    DeviceScope& operator=(const DeviceScope&) = delete;

private:
    int previous_ = 0;
};

// An event recorded now on `stream` (of `device`), marking the work issued there so far; destroyed with
// the scope (CUDA keeps it alive until pending waits on it are satisfied). Only a timing event can be
// measured against another (cudaEventElapsedTime); the others are cheaper.
struct StreamEvent {
    StreamEvent(int device, cudaStream_t stream, bool timing = false) {
        DeviceScope scope(device);
        check(cudaEventCreateWithFlags(&event, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreateWithFlags");
        const cudaError_t status = cudaEventRecord(event, stream);
        if (status != cudaSuccess) {
            cudaEventDestroy(event);
            check(status, "cudaEventRecord");
        }
    }
    ~StreamEvent() { cudaEventDestroy(event); }
    StreamEvent(const StreamEvent&) = delete;
    StreamEvent& operator=(const StreamEvent&) = delete;

    cudaEvent_t event = nullptr;
};

}  // namespace xdit::cuda
