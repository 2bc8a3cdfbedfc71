#include "context.h"

#include <string>

#include "error.h"

namespace xdit {

Context::Context(const xdit_context_options& requested) : options_(requested) {
    if (options_.num_threads < 0) invalid("num_threads must be >= 0, got " + std::to_string(options_.num_threads));
    if (options_.device_index < 0) invalid("device_index must be >= 0, got " + std::to_string(options_.device_index));
    if (options_.cpu_gemm < XDIT_CPU_GEMM_AUTO || options_.cpu_gemm > XDIT_CPU_GEMM_BUILTIN)
        invalid("unknown cpu_gemm " + std::to_string(options_.cpu_gemm));
    if (options_.cpu_isa < XDIT_CPU_ISA_AUTO || options_.cpu_isa > XDIT_CPU_ISA_BASELINE)
        invalid("unknown cpu_isa " + std::to_string(options_.cpu_isa));
    switch (options_.device_kind) {
        case XDIT_DEVICE_CPU:
            if (options_.device_index != 0) invalid("the CPU device has index 0, got " + std::to_string(options_.device_index));
            backend_ = create_cpu_backend(options_);
            break;
        case XDIT_DEVICE_CUDA: backend_ = create_cuda_backend(options_); break;
        default: invalid("unknown device kind " + std::to_string(options_.device_kind));
    }
    allocator_ = std::make_unique<CachingAllocator>(*backend_, options_.memory_limit_bytes);
    backend_->attach_allocator(allocator_.get());
    active_ = backend_.get();
}

void Context::begin_capture() {
    if (capturing()) invalid("a graph is already being captured on this context");
    active_ = &backend_->begin_capture();
    capture_pool_ = std::make_unique<GraphPool>();
    allocator_->begin_pool(capture_pool_.get());
}

void Context::end_capture(xdit_graph& out) {
    if (!capturing()) invalid("no graph is being captured on this context");
    allocator_->end_pool();
    out.pool = std::move(capture_pool_);
    active_ = backend_.get();
    out.graph = backend_->end_capture();
}

Context::~Context() {
    if (capturing()) {  // abandoned mid-capture: leave capture mode before the stream goes
        allocator_->release_pool(capture_pool_.get());
        active_ = backend_.get();
        try {
            backend_->end_capture();
        } catch (...) {
        }
    }
    // Work still queued may use cached blocks; let it finish before memory goes back.
    try {
        backend_->synchronize();
    } catch (...) {
    }
    allocator_.reset();
}

}  // namespace xdit

xdit_graph::~xdit_graph() {
    if (!context) return;
    try {
        if (graph) context->backend().synchronize();  // launches still queued use the pool
    } catch (...) {
    }
    graph.reset();
    if (pool) context->allocator().release_pool(pool.get());
}
