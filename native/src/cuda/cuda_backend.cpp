#include "cuda_backend.h"

#include "cublaslt.h"
#include "cuda_check.h"
#include "kernels.h"

namespace xdit {

namespace {

// The device count, or the runtime error that explains why there is none.
cudaError_t query_device_count(int* count) {
    *count = 0;
    const cudaError_t status = cudaGetDeviceCount(count);
    if (status != cudaSuccess) {
        cudaGetLastError();
        *count = 0;
    }
    return status;
}

}  // namespace

int cuda_device_count() {
    int count;
    query_device_count(&count);
    return count;
}

bool cuda_compiled() { return true; }

int cuda_runtime_version() { return CUDART_VERSION; }

std::unique_ptr<Backend> create_cuda_backend(xdit_context_options& options) {
    int count;
    const cudaError_t status = query_device_count(&count);
    if (status != cudaSuccess)
        fail(XDIT_STATUS_UNAVAILABLE, std::string("no usable CUDA device: cudaGetDeviceCount returned ") +
                                          cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
    if (options.device_index >= count)
        fail(XDIT_STATUS_UNAVAILABLE, "CUDA device " + std::to_string(options.device_index) + " requested, but " +
                                          std::to_string(count) + " device(s) are visible");
    if (options.num_threads == 0) options.num_threads = 1;
    return std::make_unique<cuda::CudaBackend>(options.device_index);
}

namespace cuda {

CudaBackend::CudaBackend(int device) : device_(device), name_("cuda:" + std::to_string(device)) {
    DeviceScope scope(device_);
    cudaDeviceProp properties{};
    check(cudaGetDeviceProperties(&properties, device_), "cudaGetDeviceProperties");
    if (properties.major < 8)
        fail(XDIT_STATUS_UNSUPPORTED, name_ + " (" + properties.name + ") has compute capability " +
                                          std::to_string(properties.major) + "." + std::to_string(properties.minor) +
                                          "; this library needs 8.0 or newer (Ampere, Hopper)");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
}

CudaBackend::~CudaBackend() {
    cudaSetDevice(device_);
    if (stream_) cudaStreamSynchronize(stream_);
    if (lt_) cublaslt().destroy(lt_);
    if (stream_) cudaStreamDestroy(stream_);
}

cublasLtHandle_t CudaBackend::lt_handle() {
    if (lt_ == nullptr) check_cublas(cublaslt().create(&lt_), "cublasLtCreate");
    return lt_;
}

void* CudaBackend::allocate_block(size_t bytes) {
    DeviceScope scope(device_);
    void* block = nullptr;
    if (cudaMalloc(&block, bytes) != cudaSuccess) {
        cudaGetLastError();  // an allocation failure is not sticky; the caller reports it
        return nullptr;
    }
    return block;
}

void CudaBackend::free_block(void* block) {
    DeviceScope scope(device_);
    check(cudaFree(block), "cudaFree");
}

void CudaBackend::write(void* destination, const void* source, size_t bytes) {
    DeviceScope scope(device_);
    if (capture_staging_) {  // the graph keeps the data and copies it at every launch
        check(cudaMemcpyAsync(destination, capture_staging_->keep(source, bytes), bytes, cudaMemcpyHostToDevice, stream_),
              "cudaMemcpyAsync to device (captured)");
        return;
    }
    // Pageable host memory: wait, so that the caller may reuse its memory when this returns.
    check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyHostToDevice, stream_), "cudaMemcpyAsync to device");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize after a copy to the device");
}

void CudaBackend::read(void* destination, const void* source, size_t bytes) {
    refuse_while_capturing("reading memory back");
    DeviceScope scope(device_);
    check(cudaMemcpyAsync(destination, source, bytes, cudaMemcpyDeviceToHost, stream_), "cudaMemcpyAsync to host");
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize after a copy to the host");
}

void CudaBackend::memset(void* destination, int value, size_t bytes) {
    DeviceScope scope(device_);
    check(cudaMemsetAsync(destination, value, bytes, stream_), "cudaMemsetAsync");
}

namespace {

// A timing event recorded on the context's stream.
class EventMark final : public Mark {
public:
    EventMark(int device, cudaStream_t stream) : device_(device), recorded_(device, stream, /*timing=*/true) {}

    double milliseconds_since(const Mark& start) const override {
        const auto& earlier = dynamic_cast<const EventMark&>(start);
        DeviceScope scope(device_);
        check(cudaEventSynchronize(recorded_.event), "cudaEventSynchronize");
        float milliseconds = 0;
        check(cudaEventElapsedTime(&milliseconds, earlier.recorded_.event, recorded_.event), "cudaEventElapsedTime");
        return milliseconds;
    }

private:
    int device_;
    StreamEvent recorded_;
};

}  // namespace

std::unique_ptr<Mark> CudaBackend::mark() {
    refuse_while_capturing("a timing mark");
    return std::make_unique<EventMark>(device_, stream_);
}

void CudaBackend::refuse_while_capturing(const char* what) const {
    if (capture_staging_) refuse_during_capture(name_, what);
}

Backend& CudaBackend::begin_capture() {
    if (capture_staging_) invalid("a graph is already being captured on " + name_);
    lt_handle();  // library handles are made before the capture, not inside it
    DeviceScope scope(device_);
    // Relaxed: allocations from the system (new blocks of the graph's pool, pinned staging) stay legal
    // on this thread while it captures.
    check(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeRelaxed), "cudaStreamBeginCapture");
    capture_staging_ = std::make_unique<PinnedStaging>();
    return *this;
}

std::unique_ptr<Graph> CudaBackend::end_capture() {
    if (!capture_staging_) fail(XDIT_STATUS_INTERNAL, "end_capture without begin_capture on " + name_);
    auto staging = std::move(capture_staging_);
    DeviceScope scope(device_);
    cudaGraph_t graph = nullptr;
    const cudaError_t status = cudaStreamEndCapture(stream_, &graph);
    if (status != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();  // an invalidated capture is reported here, not left for the next op
        check(status, "cudaStreamEndCapture (an operation during the capture could not be captured)");
    }
    return std::make_unique<CudaGraph>(device_, stream_, graph, std::move(staging));
}

void CudaBackend::check_wrappable(const void* data) const {
    cudaPointerAttributes attributes{};
    const cudaError_t status = cudaPointerGetAttributes(&attributes, data);
    if (status != cudaSuccess) cudaGetLastError();  // host memory the runtime does not know is not sticky
    if (status != cudaSuccess || attributes.type != cudaMemoryTypeDevice || attributes.device != device_)
        fail(XDIT_STATUS_UNSUPPORTED, name_ + " wraps only its own device memory; copy other memory into a buffer instead");
}

void CudaBackend::synchronize() {
    refuse_while_capturing("waiting for the context's work");
    DeviceScope scope(device_);
    check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
}

void CudaBackend::fill(const TensorDesc& out, double value) { launch(launch_fill, out, value); }
void CudaBackend::copy(const TensorDesc& src, const TensorDesc& out) { launch(launch_copy, src, out); }
void CudaBackend::map(const MapOp& op) { launch(launch_map, op); }

void CudaBackend::copy_from(Backend& source_backend, const TensorDesc& src, const TensorDesc& out) {
    refuse_while_capturing("copying another context's memory");
    auto* source = dynamic_cast<CudaBackend*>(&source_backend);
    if (source == nullptr)
        fail(XDIT_STATUS_UNSUPPORTED, name_ + " copies from other CUDA contexts only; the source is " +
                                          source_backend.memory_name() + " memory (copy through the host first)");
    // The events below would pull this stream into the source's capture.
    source->refuse_while_capturing("copying from this context's memory to another");
    if (source == this) {
        copy(src, out);
        return;
    }
    if (source->device_ != device_) enable_peer_access(source->device_);
    // The copy kernel runs on this stream after the source's work so far, and the source's later work
    // (which may overwrite or reuse src's memory) waits for the copy: two events, no host wait.
    StreamEvent ready(source->device_, source->stream_);
    DeviceScope scope(device_);
    check(cudaStreamWaitEvent(stream_, ready.event, 0), "cudaStreamWaitEvent (copy after the source's work)");
    launch_copy(src, out, stream_);
    StreamEvent copied(device_, stream_);
    check(cudaStreamWaitEvent(source->stream_, copied.event, 0), "cudaStreamWaitEvent (source after the copy)");
}

void CudaBackend::enable_peer_access(int peer) {
    DeviceScope scope(device_);
    int possible = 0;
    check(cudaDeviceCanAccessPeer(&possible, device_, peer), "cudaDeviceCanAccessPeer");
    if (!possible)
        fail(XDIT_STATUS_UNSUPPORTED, name_ + " cannot read cuda:" + std::to_string(peer) +
                                          "'s memory (no peer access between the two devices)");
    const cudaError_t status = cudaDeviceEnablePeerAccess(peer, 0);
    if (status == cudaErrorPeerAccessAlreadyEnabled) {
        cudaGetLastError();
        return;
    }
    check(status, "cudaDeviceEnablePeerAccess");
}
void CudaBackend::softmax(const TensorDesc& x, const TensorDesc& out) { launch(launch_softmax, x, out); }
void CudaBackend::layer_norm(const NormArgs& args) { launch(launch_layer_norm, args); }
void CudaBackend::rms_norm(const NormArgs& args) { launch(launch_rms_norm, args); }
void CudaBackend::group_norm(const NormArgs& args) { launch(launch_group_norm, args, false); }
void CudaBackend::group_norm_stats(const NormArgs& args) { launch(launch_group_norm, args, true); }
void CudaBackend::attention(const AttentionArgs& args) { launch(launch_attention, args); }
void CudaBackend::attention_merge(const MergeArgs& args) { launch(launch_attention_merge, args); }
void CudaBackend::rope(const RopeArgs& args) { launch(launch_rope, args); }

}  // namespace cuda
}  // namespace xdit
