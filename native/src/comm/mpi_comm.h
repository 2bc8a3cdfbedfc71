// A communicator over Open MPI (one rank per process, launched by mpirun), over host memory. Every
// collective is issued non-blocking and polled against a deadline, so a rank that failed or diverged
// turns into a Timeout error on the others instead of a hang; MPI runs with MPI_ERRORS_RETURN, never its
// abort handler.
#pragma once

#include <cstdint>
#include <string>

#include "communicator.h"
#include "mpi_api.h"

namespace xdit {

class MpiComm final : public xdit_comm {
public:
    // MPI_COMM_WORLD (initialising MPI on first use, thread level MULTIPLE or SERIALIZED), duplicated so
    // that the engine's messages never meet the host's.
    static MpiComm* world(double timeout_seconds);
    // Finalises MPI if this library initialised it (the process's last MPI call).
    static void finalize();

    ~MpiComm() override;

    int rank() const override { return rank_; }
    int size() const override { return size_; }

    MpiComm* split(int color, int key) override;
    void all_gather(const void* send, void* received, int64_t bytes) override;
    void all_to_all(const void* send, void* received, int64_t bytes_per_rank) override;
    void broadcast(void* data, int64_t bytes, int root) override;
    void shift(const void* send, void* received, int64_t bytes) override;
    xdit_comm_request* post_send(const void* data, int64_t bytes, int peer) override;
    xdit_comm_request* post_receive(void* data, int64_t bytes, int peer) override;
    void barrier() override;

private:
    class Request;

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
