// What every communicator of the C ABI does (xdit_comm_*): the MPI one over host memory, the NCCL one
// over a CUDA context's device memory. Buffers are contiguous bytes; typed collectives and reductions
// live in the managed layer. Every wait is bounded by the communicator's timeout: a rank that failed or
// diverged becomes a Timeout error on the others, never a hang.
#pragma once

#include <cstdint>
#include <memory>

// A point-to-point transfer in flight (xdit_comm_post_send / xdit_comm_post_receive). Deleting one that
// was not waited for lets the transfer finish in the background: its buffer must never be reused.
struct xdit_comm_request {
    virtual ~xdit_comm_request() = default;
    virtual void wait() = 0;
};

struct xdit_comm {
    virtual ~xdit_comm() = default;

    virtual int rank() const = 0;
    virtual int size() const = 0;

    // Collective: the ranks that pass the same color form a new communicator, ordered by key, then rank.
    virtual xdit_comm* split(int color, int key) = 0;
    virtual void all_gather(const void* send, void* received, int64_t bytes) = 0;
    virtual void all_to_all(const void* send, void* received, int64_t bytes_per_rank) = 0;
    virtual void broadcast(void* data, int64_t bytes, int root) = 0;
    // received = the send of rank (rank - 1) mod size.
    virtual void shift(const void* send, void* received, int64_t bytes) = 0;
    // Non-blocking send and receive, matched per pair of ranks in posting order.
    virtual xdit_comm_request* post_send(const void* data, int64_t bytes, int peer) = 0;
    virtual xdit_comm_request* post_receive(void* data, int64_t bytes, int peer) = 0;
    virtual void barrier() = 0;

    void send(const void* data, int64_t bytes, int peer) { std::unique_ptr<xdit_comm_request>(post_send(data, bytes, peer))->wait(); }
    void receive(void* data, int64_t bytes, int peer) { std::unique_ptr<xdit_comm_request>(post_receive(data, bytes, peer))->wait(); }
};
