#include "cuda_graph.h"

#include <cstring>

#include "cuda_check.h"

namespace xdit::cuda {

PinnedStaging::~PinnedStaging() {
    for (void* block : blocks_) cudaFreeHost(block);
}

const void* PinnedStaging::keep(const void* source, size_t bytes) {
    void* block = nullptr;
    check(cudaMallocHost(&block, bytes), "cudaMallocHost (host data written during a graph capture)");
    blocks_.push_back(block);
    std::memcpy(block, source, bytes);
    return block;
}

CudaGraph::CudaGraph(int device, cudaStream_t stream, cudaGraph_t graph, std::unique_ptr<PinnedStaging> staging)
    : device_(device), stream_(stream), graph_(graph), staging_(std::move(staging)) {
    DeviceScope scope(device_);
    const cudaError_t status = cudaGraphInstantiateWithFlags(&exec_, graph_, 0);
    if (status != cudaSuccess) {
        cudaGraphDestroy(graph_);
        graph_ = nullptr;
        check(status, "cudaGraphInstantiateWithFlags");
    }
}

CudaGraph::~CudaGraph() {
    cudaSetDevice(device_);
    if (exec_) cudaGraphExecDestroy(exec_);
    if (graph_) cudaGraphDestroy(graph_);
}

void CudaGraph::launch() {
    DeviceScope scope(device_);
    check(cudaGraphLaunch(exec_, stream_), "cudaGraphLaunch");
}

int64_t CudaGraph::node_count() const {
    size_t count = 0;
    check(cudaGraphGetNodes(graph_, nullptr, &count), "cudaGraphGetNodes");
    return static_cast<int64_t>(count);
}

}  // namespace xdit::cuda
