// The extern "C" entry points of the communicators (comm/), through guard() like every other.
#include <cstring>

#include "../core/api_guard.h"
#include "../core/context.h"
#include "mpi_comm.h"
#include "nccl_api.h"
#include "nccl_comm.h"

using namespace xdit;

namespace {

xdit_comm& comm_of(xdit_comm* comm) { return require(comm, "comm"); }

const xdit_comm& comm_of(const xdit_comm* comm) {
    if (comm == nullptr) invalid("comm is null");
    return *comm;
}

template <class T>
T* require_buffer(T* data, int64_t bytes, const char* what) {
    if (data == nullptr && bytes > 0) invalid(std::string(what) + " is null");
    return data;
}

}  // namespace

extern "C" {

xdit_status xdit_comm_mpi_world(double timeout_seconds, xdit_comm** out_comm) {
    return guard(__func__, [&] {
        auto& out = require(out_comm, "out_comm");
        if (!(timeout_seconds > 0)) invalid("timeout_seconds must be positive");
        out = MpiComm::world(timeout_seconds);
    });
}

xdit_status xdit_comm_mpi_finalize(void) {
    return guard(__func__, [&] { MpiComm::finalize(); });
}

xdit_status xdit_comm_nccl_unique_id(uint8_t* id, uint64_t id_bytes) {
    return guard(__func__, [&] {
        if (id_bytes != nccl::kUniqueIdBytes) invalid("id_bytes must be XDIT_NCCL_ID_BYTES (128)");
        nccl::UniqueId unique{};
        const nccl::Result result = nccl::api().GetUniqueId(&unique);
        if (result != nccl::kSuccess) fail(XDIT_STATUS_DEVICE_ERROR, std::string("ncclGetUniqueId failed: ") + nccl::api().GetErrorString(result));
        std::memcpy(&require(id, "id"), unique.internal, nccl::kUniqueIdBytes);
    });
}

xdit_status xdit_comm_nccl_init(xdit_context* context, const uint8_t* id, uint64_t id_bytes, int32_t rank, int32_t size,
                                double timeout_seconds, xdit_comm** out_comm) {
    return guard(__func__, [&] {
        auto& out = require(out_comm, "out_comm");
        if (context == nullptr || !context->context) invalid("context is null");
        if (id == nullptr) invalid("id is null");
        if (id_bytes != nccl::kUniqueIdBytes) invalid("id_bytes must be XDIT_NCCL_ID_BYTES (128)");
        if (!(timeout_seconds > 0)) invalid("timeout_seconds must be positive");
        out = create_nccl_comm(context->context, id, rank, size, timeout_seconds);
    });
}

xdit_status xdit_comm_nccl_version(int32_t* version) {
    return guard(__func__, [&] {
        int v = 0;
        nccl::api().GetVersion(&v);
        require(version, "version") = v;
    });
}

xdit_status xdit_comm_destroy(xdit_comm* comm) {
    return guard(__func__, [&] { delete comm; });
}

xdit_status xdit_comm_rank(const xdit_comm* comm, int32_t* rank) {
    return guard(__func__, [&] { require(rank, "rank") = comm_of(comm).rank(); });
}

xdit_status xdit_comm_size(const xdit_comm* comm, int32_t* size) {
    return guard(__func__, [&] { require(size, "size") = comm_of(comm).size(); });
}

xdit_status xdit_comm_split(xdit_comm* comm, int32_t color, int32_t key, xdit_comm** out_comm) {
    return guard(__func__, [&] {
        auto& out = require(out_comm, "out_comm");
        out = comm_of(comm).split(color, key);
    });
}

xdit_status xdit_comm_all_gather(xdit_comm* comm, const void* send, void* received, int64_t bytes) {
    return guard(__func__, [&] {
        comm_of(comm).all_gather(require_buffer(send, bytes, "send"), require_buffer(received, bytes, "received"), bytes);
    });
}

xdit_status xdit_comm_all_to_all(xdit_comm* comm, const void* send, void* received, int64_t bytes_per_rank) {
    return guard(__func__, [&] {
        comm_of(comm).all_to_all(require_buffer(send, bytes_per_rank, "send"), require_buffer(received, bytes_per_rank, "received"),
                                bytes_per_rank);
    });
}

xdit_status xdit_comm_broadcast(xdit_comm* comm, void* data, int64_t bytes, int32_t root) {
    return guard(__func__, [&] { comm_of(comm).broadcast(require_buffer(data, bytes, "data"), bytes, root); });
}

xdit_status xdit_comm_shift(xdit_comm* comm, const void* send, void* received, int64_t bytes) {
    return guard(__func__, [&] {
        comm_of(comm).shift(require_buffer(send, bytes, "send"), require_buffer(received, bytes, "received"), bytes);
    });
}

xdit_status xdit_comm_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer) {
    return guard(__func__, [&] { comm_of(comm).send(require_buffer(data, bytes, "data"), bytes, peer); });
}

xdit_status xdit_comm_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer) {
    return guard(__func__, [&] { comm_of(comm).receive(require_buffer(data, bytes, "data"), bytes, peer); });
}

xdit_status xdit_comm_post_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer,
                                xdit_comm_request** out_request) {
    return guard(__func__, [&] {
        xdit_comm_request*& out = require(out_request, "out_request");
        out = comm_of(comm).post_send(require_buffer(data, bytes, "data"), bytes, peer);
    });
}

xdit_status xdit_comm_post_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer,
                                   xdit_comm_request** out_request) {
    return guard(__func__, [&] {
        xdit_comm_request*& out = require(out_request, "out_request");
        out = comm_of(comm).post_receive(require_buffer(data, bytes, "data"), bytes, peer);
    });
}

xdit_status xdit_comm_request_wait(xdit_comm_request* request) {
    return guard(__func__, [&] { require(request, "request").wait(); });
}

xdit_status xdit_comm_request_free(xdit_comm_request* request) {
    return guard(__func__, [&] { delete request; });
}

xdit_status xdit_comm_barrier(xdit_comm* comm) {
    return guard(__func__, [&] { comm_of(comm).barrier(); });
}

}  // extern "C"
