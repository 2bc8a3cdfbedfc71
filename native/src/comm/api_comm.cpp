// The extern "C" entry points of the communicators (comm/), through guard() like every other.
#include "../core/api_guard.h"
#include "mpi_comm.h"

using namespace xdit;

namespace {

MpiComm& mpi_of(xdit_comm* comm) {
    auto* m = dynamic_cast<MpiComm*>(&require(comm, "comm"));
    if (m == nullptr) invalid("comm is not an MPI communicator");
    return *m;
}

const MpiComm& mpi_of(const xdit_comm* comm) { return mpi_of(const_cast<xdit_comm*>(comm)); }

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

xdit_status xdit_comm_destroy(xdit_comm* comm) {
    return guard(__func__, [&] { delete comm; });
}

xdit_status xdit_comm_rank(const xdit_comm* comm, int32_t* rank) {
    return guard(__func__, [&] { require(rank, "rank") = mpi_of(comm).rank(); });
}

xdit_status xdit_comm_size(const xdit_comm* comm, int32_t* size) {
    return guard(__func__, [&] { require(size, "size") = mpi_of(comm).size(); });
}

xdit_status xdit_comm_split(xdit_comm* comm, int32_t color, int32_t key, xdit_comm** out_comm) {
    return guard(__func__, [&] {
        auto& out = require(out_comm, "out_comm");
        out = mpi_of(comm).split(color, key);
    });
}

xdit_status xdit_comm_all_gather(xdit_comm* comm, const void* send, void* received, int64_t bytes) {
    return guard(__func__, [&] {
        mpi_of(comm).all_gather(require_buffer(send, bytes, "send"), require_buffer(received, bytes, "received"), bytes);
    });
}

xdit_status xdit_comm_all_to_all(xdit_comm* comm, const void* send, void* received, int64_t bytes_per_rank) {
    return guard(__func__, [&] {
        mpi_of(comm).all_to_all(require_buffer(send, bytes_per_rank, "send"), require_buffer(received, bytes_per_rank, "received"),
                                bytes_per_rank);
    });
}

xdit_status xdit_comm_broadcast(xdit_comm* comm, void* data, int64_t bytes, int32_t root) {
    return guard(__func__, [&] { mpi_of(comm).broadcast(require_buffer(data, bytes, "data"), bytes, root); });
}

xdit_status xdit_comm_shift(xdit_comm* comm, const void* send, void* received, int64_t bytes) {
    return guard(__func__, [&] {
        mpi_of(comm).shift(require_buffer(send, bytes, "send"), require_buffer(received, bytes, "received"), bytes);
    });
}

xdit_status xdit_comm_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer) {
    return guard(__func__, [&] { mpi_of(comm).send(require_buffer(data, bytes, "data"), bytes, peer); });
}

xdit_status xdit_comm_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer) {
    return guard(__func__, [&] { mpi_of(comm).receive(require_buffer(data, bytes, "data"), bytes, peer); });
}

xdit_status xdit_comm_post_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer,
                                xdit_comm_request** out_request) {
    return guard(__func__, [&] {
        xdit_comm_request*& out = require(out_request, "out_request");
        out = mpi_of(comm).post_send(require_buffer(data, bytes, "data"), bytes, peer);
    });
}

xdit_status xdit_comm_post_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer,
                                   xdit_comm_request** out_request) {
    return guard(__func__, [&] {
        xdit_comm_request*& out = require(out_request, "out_request");
        out = mpi_of(comm).post_receive(require_buffer(data, bytes, "data"), bytes, peer);
    });
}

xdit_status xdit_comm_request_wait(xdit_comm_request* request) {
    return guard(__func__, [&] {
        xdit_comm_request& r = require(request, "request");
        r.comm->complete(r);
    });
}

xdit_status xdit_comm_request_free(xdit_comm_request* request) {
    return guard(__func__, [&] {
        if (request == nullptr) return;
        // A transfer still under way completes in the background; its buffer must never be reused.
        if (request->request != nullptr) mpi::api().Request_free(&request->request);
        delete request;
    });
}

xdit_status xdit_comm_barrier(xdit_comm* comm) {
    return guard(__func__, [&] { mpi_of(comm).barrier(); });
}

}  // extern "C"
