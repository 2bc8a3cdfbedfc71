// The CUDA backend: one device, one non-blocking stream, device memory from cudaMalloc behind the
// context's caching allocator, cuBLASLt for GEMM.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "core/backend.h"
#include "cuda_check.h"
#include "cuda_graph.h"

namespace xdit::cuda {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(int device);
    ~CudaBackend() override;

    void* allocate_block(size_t bytes) override;
    void free_block(void* block) override;
    const char* memory_name() const override { return name_.c_str(); }
    int device() const { return device_; }
    // The stream every op of this context is ordered on (the NCCL communicator enqueues on it too).
    cudaStream_t stream() const { return stream_; }

    void write(void* destination, const void* source, size_t bytes) override;
    void read(void* destination, const void* source, size_t bytes) override;
    void memset(void* destination, int value, size_t bytes) override;
    void synchronize() override;
    void check_wrappable(const void* data) const override;
    std::unique_ptr<Mark> mark() override;
    Backend& begin_capture() override;
    std::unique_ptr<Graph> end_capture() override;

    void fill(const TensorDesc& out, double value) override;
    void copy(const TensorDesc& src, const TensorDesc& out) override;
    void copy_from(Backend& source, const TensorDesc& src, const TensorDesc& out) override;
    void map(const MapOp& op) override;
    void gemm(const GemmProblem& problem) override;
    void softmax(const TensorDesc& x, const TensorDesc& out) override;
    void layer_norm(const NormArgs& args) override;
    void rms_norm(const NormArgs& args) override;
    void group_norm(const NormArgs& args) override;
    void group_norm_stats(const NormArgs& args) override;
    void attention(const AttentionArgs& args) override;
    void attention_merge(const MergeArgs& args) override;
    void rope(const RopeArgs& args) override;
    void conv2d(const ConvArgs& args) override;

private:
    cublasLtHandle_t lt_handle();
    // Lets this device's kernels read `peer`'s memory (idempotent).
    void enable_peer_access(int peer);
    template <class Launch, class... Args>
    void launch(Launch launcher, const Args&... args);
    // Fails while the stream is captured: `what` needs the work issued so far to have run.
    void refuse_while_capturing(const char* what) const;

    int device_;
    std::string name_;
    cudaStream_t stream_ = nullptr;
    cublasLtHandle_t lt_ = nullptr;
    std::unique_ptr<PinnedStaging> capture_staging_;  // non-null while the stream is captured
};

// Every kernel launch: on this context's device, ordered on its stream.
template <class Launch, class... Args>
void CudaBackend::launch(Launch launcher, const Args&... args) {
    DeviceScope scope(device_);
    launcher(args..., stream_);
}

}  // namespace xdit::cuda
