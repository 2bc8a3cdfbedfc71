// CUDA graph capture of a context's stream: what xdit_graph is on a CUDA context.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>
#include <vector>

#include "core/backend.h"

namespace xdit::cuda {

// Host data written to the device during a capture: the capture copies it into pinned memory, whose
// copy node every launch replays (pageable memory cannot be captured).
class PinnedStaging {
public:
    PinnedStaging() = default;
    ~PinnedStaging();
    PinnedStaging(const PinnedStaging&) = delete;
    PinnedStaging& operator=(const PinnedStaging&) = delete;

    const void* keep(const void* source, size_t bytes);

private:
    std::vector<void*> blocks_;
};

// An instantiated graph launched on the context's stream.
class CudaGraph final : public Graph {
public:
    // Takes `graph` (destroying it on failure) and instantiates it.
    CudaGraph(int device, cudaStream_t stream, cudaGraph_t graph, std::unique_ptr<PinnedStaging> staging);
    ~CudaGraph() override;

    void launch() override;
    int64_t node_count() const override;

private:
    int device_;
    cudaStream_t stream_;
    cudaGraph_t graph_ = nullptr;
    cudaGraphExec_t exec_ = nullptr;
    std::unique_ptr<PinnedStaging> staging_;
};

}  // namespace xdit::cuda
