// A context: one device, its backend (stream, library handles), its caching allocator and, for
// CPU work, its thread budget.
#pragma once

#include <atomic>
#include <memory>

#include "allocator.h"
#include "backend.h"
#include "error.h"

namespace xdit {

class Context {
public:
    explicit Context(const xdit_context_options& options);
    ~Context();

    // Where the context's work goes: the backend, or while a graph is captured, what records it.
    Backend& backend() { return *active_; }
    CachingAllocator& allocator() { return *allocator_; }
    const xdit_context_options& options() const { return options_; }

    // Graph capture (xdit_graph_begin / xdit_graph_end): from begin_capture on, the context's work is
    // recorded and its allocations come from a pool of the graph's. end_capture leaves capture mode
    // and hands the pool, then the graph, to `out` (which releases the pool if the capture failed).
    void begin_capture();
    void end_capture(xdit_graph& out);
    bool capturing() const { return capture_pool_ != nullptr; }

private:
    xdit_context_options options_;
    std::unique_ptr<Backend> backend_;
    std::unique_ptr<CachingAllocator> allocator_;
    Backend* active_ = nullptr;
    std::unique_ptr<GraphPool> capture_pool_;
};

}  // namespace xdit

struct xdit_graph;

// The C handles. A buffer holds a reference to its context, so a context outlives its buffers
// whatever order the caller frees them in.
struct xdit_context {
    std::shared_ptr<xdit::Context> context;
};

struct xdit_buffer {
    std::shared_ptr<xdit::Context> context;
    void* data = nullptr;
    uint64_t bytes = 0;
    size_t block_bytes = 0;
    bool owned = true;  // false for memory the caller wrapped (xdit_buffer_wrap)
};

// A captured graph holds its context and the memory its work was captured with; releasing it waits
// for its launches to finish.
struct xdit_graph {
    std::shared_ptr<xdit::Context> context;
    std::unique_ptr<xdit::GraphPool> pool;
    std::unique_ptr<xdit::Graph> graph;
    ~xdit_graph();
};

// A timing mark holds its context, so the context (and, on CUDA, the event's device) outlives it.
struct xdit_mark {
    std::shared_ptr<xdit::Context> context;
    std::unique_ptr<xdit::Mark> mark;
};

namespace xdit {

inline Context& context_of(xdit_context* handle) {
    if (handle == nullptr || !handle->context) invalid("context is null");
    return *handle->context;
}

}  // namespace xdit
