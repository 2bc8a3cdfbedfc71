// A communicator over Open MPI (one rank per process, launched by mpirun). Every collective is issued
// non-blocking and polled against a deadline, so a rank that failed or diverged turns into a Timeout
// error on the others instead of a hang; MPI runs with MPI_ERRORS_RETURN, never its abort handler.
// Buffers are host memory, contiguous bytes; typed collectives and reductions live in the managed layer.
#pragma once

#include <cstdint>
#include <string>

#include "mpi_api.h"

struct xdit_comm {
    virtual ~xdit_comm() = default;
};

namespace xdit {
class MpiComm;
}

// A point-to-point transfer in flight (xdit_comm_post_send / xdit_comm_post_receive).
struct xdit_comm_request {
    xdit::MpiComm* comm;
    xdit::mpi::Request request;  // null once complete
    const char* operation;       // "send" or "receive"
};

namespace xdit {

class MpiComm final : public xdit_comm {
public:
    // MPI_COMM_WORLD (initialising MPI on first use, thread level MULTIPLE or SERIALIZED), duplicated so
    // that the engine's messages never meet the host's.
    static MpiComm* world(double timeout_seconds);
    // Finalises MPI if this library initialised it (the process's last MPI call).
    static void finalize();

    ~MpiComm() override;

    int rank() const { return rank_; }
    int size() const { return size_; }

    MpiComm* split(int color, int key);
    void all_gather(const void* send, void* received, int64_t bytes);
    void all_to_all(const void* send, void* received, int64_t bytes_per_rank);
    void broadcast(void* data, int64_t bytes, int root);
    void shift(const void* send, void* received, int64_t bytes);
    void send(const void* data, int64_t bytes, int peer);
    void receive(void* data, int64_t bytes, int peer);
    // Non-blocking forms of send and receive, matched in posting order with them; complete() waits.
    xdit_comm_request* post_send(const void* data, int64_t bytes, int peer);
    xdit_comm_request* post_receive(void* data, int64_t bytes, int peer);
    void complete(xdit_comm_request& request);
    void barrier();

private:
    MpiComm(mpi::Comm comm, double timeout_seconds);
    void check(int code, const char* operation);
    void check_usable(const char* operation) const;
    void wait(mpi::Request* requests, int count, const char* operation);
    int count(int64_t bytes, const char* operation) const;
    void check_peer(int peer, const char* what) const;
    void check_point_to_point(int peer, bool sending) const;

    mpi::Comm comm_;
    double timeout_;
    int rank_ = 0;
    int size_ = 1;
    std::string broken_;
};

}  // namespace xdit
