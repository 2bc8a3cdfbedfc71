// The device-specific half of a context. The C entry points (api.cpp) validate every operand and
// hand the backend checked descriptors; a backend only executes.
#pragma once

#include <memory>
#include <string>

#include "allocator.h"
#include "error.h"
#include "gemm_problem.h"
#include "ops.h"
#include "tensor_desc.h"

namespace xdit {

// A point in a backend's work (xdit_context_mark), for timing.
class Mark {
public:
    virtual ~Mark() = default;
    // Milliseconds from `start` (a mark of the same backend) to this one, once this one is reached.
    virtual double milliseconds_since(const Mark& start) const = 0;
};

// A captured sequence of one context's work (xdit_graph): launch() issues all of it again, on the
// same memory, in the order it was captured.
class Graph {
public:
    virtual ~Graph() = default;
    virtual void launch() = 0;
    virtual int64_t node_count() const = 0;  // kernels, copies and library calls captured
};

class RecordingBackend;

class Backend : public MemorySource {
public:
    Backend();
    ~Backend() override;

    // Byte copies between this device's memory and host memory, ordered on the context's stream;
    // read() returns when the bytes have arrived.
    virtual void write(void* device_destination, const void* host_source, size_t bytes) = 0;
    virtual void read(void* host_destination, const void* device_source, size_t bytes) = 0;
    virtual void memset(void* device_destination, int value, size_t bytes) = 0;
    virtual void synchronize() = 0;
    // Fails (UNSUPPORTED) unless `data` is memory this backend's kernels may use in place
    // (xdit_buffer_wrap): host memory on the CPU, the context's own device memory on CUDA.
    virtual void check_wrappable(const void* data) const = 0;
    virtual std::unique_ptr<Mark> mark() = 0;

    virtual void fill(const TensorDesc& out, double value) = 0;
    virtual void copy(const TensorDesc& src, const TensorDesc& out) = 0;
    // out = src, where src is the memory of another context (an in-process rank's) whose backend is
    // `source`: ordered after the work issued on `source` so far, and before any work `source` issues
    // later (which may overwrite or free src).
    virtual void copy_from(Backend& source, const TensorDesc& src, const TensorDesc& out) = 0;
    virtual void map(const MapOp& op) = 0;
    virtual void gemm(const GemmProblem& problem) = 0;

    // The DiT operator set. A backend that does not have an op yet reports it as UNSUPPORTED,
    // naming the op and the device, instead of computing anything.
    virtual void reduce_abs_sum(const TensorDesc& a, const TensorDesc* b, const TensorDesc& out) { missing("reduce_abs_sum"); }
    virtual void softmax(const TensorDesc& x, const TensorDesc& out) { missing("softmax"); }
    virtual void layer_norm(const NormArgs& args) { missing("layer_norm"); }
    virtual void rms_norm(const NormArgs& args) { missing("rms_norm"); }
    virtual void group_norm(const NormArgs& args) { missing("group_norm"); }
    virtual void group_norm_stats(const NormArgs& args) { missing("group_norm_stats"); }
    virtual void attention(const AttentionArgs& args) { missing("attention"); }
    virtual void attention_merge(const MergeArgs& args) { missing("attention_merge"); }
    virtual void rope(const RopeArgs& args) { missing("rope"); }
    virtual void conv2d(const ConvArgs& args) { missing("conv2d"); }

    // Graph capture: between the two calls the context issues its work to the backend begin_capture
    // returns, which records it instead of running it. The default records the calls themselves (a
    // RecordingBackend); CUDA captures its stream. end_capture leaves capture mode even when it fails.
    virtual Backend& begin_capture();
    virtual std::unique_ptr<Graph> end_capture();

    // Lets backends take scratch memory from their context's allocator. Set once, before any op.
    void attach_allocator(CachingAllocator* allocator) { allocator_ = allocator; }

protected:
    CachingAllocator& allocator() const { return *allocator_; }

private:
    [[noreturn]] void missing(const char* op) const {
        fail(XDIT_STATUS_UNSUPPORTED, std::string(op) + " is not implemented on " + memory_name() + " yet");
    }

    CachingAllocator* allocator_ = nullptr;
    std::unique_ptr<RecordingBackend> recorder_;  // while the default capture records
};

// The error of an operation that needs the work issued so far to have run, asked for while a graph is
// being captured on `device` (the same words for every backend).
[[noreturn]] inline void refuse_during_capture(const std::string& device, const char* what) {
    fail(XDIT_STATUS_UNSUPPORTED, std::string(what) + " while a graph is being captured on " + device + ": captured work has not run yet");
}

// Backend factories. options are already checked for ranges; each factory throws a clear
// xdit::Error when its device or library is missing.
std::unique_ptr<Backend> create_cpu_backend(xdit_context_options& options);
std::unique_ptr<Backend> create_cuda_backend(xdit_context_options& options);

// CUDA devices visible to this process; 0 when the library was built without CUDA, or there is no
// GPU or driver.
int cuda_device_count();
bool cuda_compiled();
int cuda_runtime_version();

}  // namespace xdit
