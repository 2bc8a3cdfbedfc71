// The extern "C" entry points of the library, its contexts and buffers. Every function runs through
// guard(), so no exception crosses the boundary. The ops are in api_ops.cpp and api_nn.cpp.
#include <cstddef>
#include <cstring>
#include <string>
#include <thread>

#include "api_guard.h"
#include "context.h"
#include "cpu/openblas.h"
#include "dtype.h"

namespace xdit {

namespace {
thread_local std::string last_error;

xdit_buffer& buffer_of(xdit_buffer* handle) {
    if (handle == nullptr || !handle->context) invalid("buffer is null");
    return *handle;
}

void check_range(const xdit_buffer& buffer, uint64_t offset, uint64_t bytes, const char* what) {
    if (offset > buffer.bytes || bytes > buffer.bytes - offset)
        invalid(std::string(what) + " of " + std::to_string(bytes) + " bytes at offset " + std::to_string(offset) +
                " is outside the buffer of " + std::to_string(buffer.bytes) + " bytes");
}

struct AbiEntry {
    const char* struct_name;
    const char* field_name;  // null for the struct's own size entry
    uint64_t value;
};

#define XDIT_ABI_STRUCT(S) {#S, nullptr, sizeof(S)},
#define XDIT_ABI_FIELD(S, F) {#S, #F, offsetof(S, F)},
const AbiEntry abi_entries[] = {
#include "abi_layout.g.h"
};
#undef XDIT_ABI_STRUCT
#undef XDIT_ABI_FIELD

uint64_t abi_lookup(const char* struct_name, const char* field_name) {
    require(struct_name, "struct_name");
    for (const AbiEntry& e : abi_entries) {
        if (std::strcmp(e.struct_name, struct_name) != 0) continue;
        if (field_name == nullptr ? e.field_name == nullptr
                                  : (e.field_name != nullptr && std::strcmp(e.field_name, field_name) == 0))
            return e.value;
    }
    invalid(std::string("unknown ") + (field_name ? "field " + std::string(struct_name) + "." + field_name
                                                  : "struct " + std::string(struct_name)));
}
}  // namespace

void set_last_error(const std::string& message) noexcept {
    try {
        last_error = message;
    } catch (...) {
        last_error.clear();
    }
}

}  // namespace xdit

using namespace xdit;

extern "C" {

uint32_t xdit_abi_version(void) { return XDIT_ABI_VERSION; }

const char* xdit_last_error(void) { return last_error.c_str(); }

xdit_status xdit_get_build_info(xdit_build_info* info) {
    return guard(__func__, [&] {
        xdit_build_info& out = require(info, "info");
        out = xdit_build_info{};
        out.abi_version = XDIT_ABI_VERSION;
        out.cuda_compiled = cuda_compiled() ? 1 : 0;
        out.cuda_runtime_version = cuda_runtime_version();
        out.cuda_device_count = cuda_device_count();
        out.openblas_loaded = openblas() != nullptr ? 1 : 0;
        out.hardware_threads = static_cast<int32_t>(std::thread::hardware_concurrency());
    });
}

xdit_status xdit_abi_struct_size(const char* struct_name, uint64_t* size) {
    return guard(__func__, [&] { require(size, "size") = abi_lookup(struct_name, nullptr); });
}

xdit_status xdit_abi_field_offset(const char* struct_name, const char* field_name, uint64_t* offset) {
    return guard(__func__, [&] {
        require(field_name, "field_name");
        require(offset, "offset") = abi_lookup(struct_name, field_name);
    });
}

xdit_status xdit_context_create(const xdit_context_options* options, xdit_context** out_context) {
    return guard(__func__, [&] {
        xdit_context*& out = require(out_context, "out_context");
        out = nullptr;
        const xdit_context_options requested = options ? *options : xdit_context_options{};
        auto handle = std::make_unique<xdit_context>();
        handle->context = std::make_shared<Context>(requested);
        out = handle.release();
    });
}

xdit_status xdit_context_destroy(xdit_context* context) {
    return guard(__func__, [&] { delete context; });
}

xdit_status xdit_context_synchronize(xdit_context* context) {
    return guard(__func__, [&] { context_of(context).backend().synchronize(); });
}

xdit_status xdit_context_mark(xdit_context* context, xdit_mark** out_mark) {
    return guard(__func__, [&] {
        auto& out = require(out_mark, "out_mark");
        Context& c = context_of(context);
        out = new xdit_mark{context->context, c.backend().mark()};
    });
}

xdit_status xdit_mark_elapsed(const xdit_mark* start, const xdit_mark* end, double* milliseconds) {
    return guard(__func__, [&] {
        const xdit_mark& from = require(start, "start");
        const xdit_mark& to = require(end, "end");
        if (from.context != to.context) invalid("the two marks belong to different contexts");
        require(milliseconds, "milliseconds") = to.mark->milliseconds_since(*from.mark);
    });
}

xdit_status xdit_mark_destroy(xdit_mark* mark) {
    return guard(__func__, [&] { delete mark; });
}

xdit_status xdit_graph_begin(xdit_context* context) {
    return guard(__func__, [&] { context_of(context).begin_capture(); });
}

xdit_status xdit_graph_end(xdit_context* context, xdit_graph** out_graph) {
    return guard(__func__, [&] {
        auto& out = require(out_graph, "out_graph");
        out = nullptr;
        Context& c = context_of(context);
        if (!c.capturing()) invalid("no graph is being captured on this context");
        auto handle = std::make_unique<xdit_graph>();
        handle->context = context->context;
        c.end_capture(*handle);
        out = handle.release();
    });
}

xdit_status xdit_graph_launch(xdit_graph* graph) {
    return guard(__func__, [&] {
        xdit_graph& g = require(graph, "graph");
        if (g.context->capturing()) invalid("cannot launch a graph while its context is capturing one");
        g.graph->launch();
    });
}

xdit_status xdit_graph_node_count(const xdit_graph* graph, int64_t* count) {
    return guard(__func__, [&] { require(count, "count") = require(graph, "graph").graph->node_count(); });
}

xdit_status xdit_graph_destroy(xdit_graph* graph) {
    return guard(__func__, [&] { delete graph; });
}

xdit_status xdit_context_get_options(xdit_context* context, xdit_context_options* options) {
    return guard(__func__, [&] { require(options, "options") = context_of(context).options(); });
}

xdit_status xdit_context_allocator_stats(xdit_context* context, xdit_allocator_stats* stats) {
    return guard(__func__, [&] { require(stats, "stats") = context_of(context).allocator().stats(); });
}

xdit_status xdit_context_release_cached(xdit_context* context) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        c.backend().synchronize();
        c.allocator().release_cached();
    });
}

xdit_status xdit_context_reset_peak(xdit_context* context) {
    return guard(__func__, [&] { context_of(context).allocator().reset_peak(); });
}

xdit_status xdit_buffer_alloc(xdit_context* context, uint64_t bytes, xdit_buffer** out_buffer) {
    return guard(__func__, [&] {
        xdit_buffer*& out = require(out_buffer, "out_buffer");
        out = nullptr;
        Context& c = context_of(context);
        auto handle = std::make_unique<xdit_buffer>();
        handle->context = context->context;
        handle->bytes = bytes;
        if (bytes > 0) handle->data = c.allocator().allocate(bytes, &handle->block_bytes);
        out = handle.release();
    });
}

xdit_status xdit_buffer_free(xdit_buffer* buffer) {
    return guard(__func__, [&] {
        if (buffer == nullptr) return;
        if (buffer->data && buffer->owned) buffer->context->allocator().free(buffer->data, buffer->block_bytes);
        delete buffer;
    });
}

xdit_status xdit_buffer_wrap(xdit_context* context, void* data, uint64_t bytes, xdit_buffer** out_buffer) {
    return guard(__func__, [&] {
        xdit_buffer*& out = require(out_buffer, "out_buffer");
        out = nullptr;
        Context& c = context_of(context);
        if (data == nullptr && bytes > 0) invalid("data is null");
        if (bytes > 0) c.backend().check_wrappable(data);
        auto handle = std::make_unique<xdit_buffer>();
        handle->context = context->context;
        handle->data = data;
        handle->bytes = bytes;
        handle->owned = false;
        out = handle.release();
    });
}

xdit_status xdit_buffer_data(xdit_buffer* buffer, void** out_data) {
    return guard(__func__, [&] { require(out_data, "out_data") = buffer_of(buffer).data; });
}

xdit_status xdit_buffer_size(xdit_buffer* buffer, uint64_t* out_bytes) {
    return guard(__func__, [&] { require(out_bytes, "out_bytes") = buffer_of(buffer).bytes; });
}

xdit_status xdit_buffer_write(xdit_buffer* buffer, uint64_t offset, const void* source, uint64_t bytes) {
    return guard(__func__, [&] {
        xdit_buffer& b = buffer_of(buffer);
        check_range(b, offset, bytes, "write");
        if (bytes == 0) return;
        if (source == nullptr) invalid("source is null");
        b.context->backend().write(static_cast<char*>(b.data) + offset, source, bytes);
    });
}

xdit_status xdit_buffer_read(xdit_buffer* buffer, uint64_t offset, void* destination, uint64_t bytes) {
    return guard(__func__, [&] {
        xdit_buffer& b = buffer_of(buffer);
        check_range(b, offset, bytes, "read");
        if (bytes == 0) return;
        if (destination == nullptr) invalid("destination is null");
        b.context->backend().read(destination, static_cast<char*>(b.data) + offset, bytes);
    });
}

xdit_status xdit_buffer_memset(xdit_buffer* buffer, uint64_t offset, int32_t value, uint64_t bytes) {
    return guard(__func__, [&] {
        xdit_buffer& b = buffer_of(buffer);
        check_range(b, offset, bytes, "memset");
        if (bytes == 0) return;
        b.context->backend().memset(static_cast<char*>(b.data) + offset, value, bytes);
    });
}

}  // extern "C"
