#include "mpi_comm.h"

#include <chrono>
#include <climits>
#include <memory>
#include <mutex>
#include <thread>

#include "../core/error.h"

namespace xdit {

namespace {

constexpr int kShiftTag = 7001;
constexpr int kSendTag = 7002;

std::mutex init_mutex;
bool initialised_here = false;

}  // namespace

MpiComm* MpiComm::world(double timeout_seconds) {
    const mpi::Api& m = mpi::api();
    {
        std::lock_guard<std::mutex> lock(init_mutex);
        int initialised = 0, finalised = 0;
        m.Initialized(&initialised);
        m.Finalized(&finalised);
        if (finalised) fail(XDIT_STATUS_UNAVAILABLE, "MPI was already finalised in this process");
        if (!initialised) {
            int provided = 0;
            const int code = m.Init_thread(nullptr, nullptr, mpi::kThreadMultiple, &provided);
            if (code != mpi::kSuccess) fail(XDIT_STATUS_UNAVAILABLE, "MPI_Init_thread failed: " + mpi::error_string(code));
            initialised_here = true;
            if (provided < mpi::kThreadSerialized)
                fail(XDIT_STATUS_UNAVAILABLE, "this MPI gives thread level " + std::to_string(provided) +
                                                  "; the engine calls MPI from its rank threads and needs MPI_THREAD_SERIALIZED or more");
        }
        m.Comm_set_errhandler(m.comm_world, m.errors_return);
    }
    mpi::Comm duplicate = nullptr;
    const int code = m.Comm_dup(m.comm_world, &duplicate);
    if (code != mpi::kSuccess) fail(XDIT_STATUS_UNAVAILABLE, "MPI_Comm_dup(MPI_COMM_WORLD) failed: " + mpi::error_string(code));
    return new MpiComm(duplicate, timeout_seconds);
}

void MpiComm::finalize() {
    const mpi::Api& m = mpi::api();
    std::lock_guard<std::mutex> lock(init_mutex);
    int finalised = 0;
    m.Finalized(&finalised);
    if (initialised_here && !finalised) m.Finalize();
}

MpiComm::MpiComm(mpi::Comm comm, double timeout_seconds) : comm_(comm), timeout_(timeout_seconds) {
    const mpi::Api& m = mpi::api();
    m.Comm_set_errhandler(comm_, m.errors_return);
    check(m.Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check(m.Comm_size(comm_, &size_), "MPI_Comm_size");
}

MpiComm::~MpiComm() {
    // A communicator whose collective timed out still has a request in flight: freeing it could block.
    if (broken_.empty() && comm_ != nullptr) mpi::api().Comm_free(&comm_);
}

void MpiComm::check(int code, const char* operation) {
    if (code == mpi::kSuccess) return;
    broken_ = std::string(operation) + " failed: " + mpi::error_string(code);
    fail(XDIT_STATUS_DEVICE_ERROR, "MPI rank " + std::to_string(rank_) + ": " + broken_);
}

void MpiComm::check_usable(const char* operation) const {
    if (!broken_.empty())
        fail(XDIT_STATUS_TIMEOUT, "MPI rank " + std::to_string(rank_) + ": " + operation +
                                      " on a communicator that already failed (" + broken_ + ")");
}

int MpiComm::count(int64_t bytes, const char* operation) const {
    if (bytes < 0) invalid(std::string(operation) + ": negative byte count");
    if (bytes > INT_MAX)
        fail(XDIT_STATUS_UNSUPPORTED, std::string(operation) + ": " + std::to_string(bytes) +
                                          " bytes in one message exceed MPI's int count (2 GiB); split the tensor");
    return static_cast<int>(bytes);
}

void MpiComm::check_peer(int peer, const char* what) const {
    if (peer < 0 || peer >= size_)
        invalid(std::string(what) + " " + std::to_string(peer) + " is outside the group of " + std::to_string(size_) + " ranks");
}

void MpiComm::wait(mpi::Request* requests, int count, const char* operation) {
    const mpi::Api& m = mpi::api();
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + std::chrono::duration<double>(timeout_);
    for (int spins = 0;; ++spins) {
        bool done = true;
        for (int i = 0; i < count; ++i) {
            if (requests[i] == nullptr) continue;
            int flag = 0;
            check(m.Test(&requests[i], &flag, nullptr), operation);
            if (!flag) done = false;
        }
        if (done) return;
        if (std::chrono::steady_clock::now() > deadline) {
            broken_ = std::string(operation) + " timed out after " + std::to_string(static_cast<int>(timeout_)) + " s";
            fail(XDIT_STATUS_TIMEOUT, "MPI rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": " + broken_ +
                                          " (a rank failed, left, or called another collective)");
        }
        // Spin briefly for short collectives, then back off so waiting ranks leave the cores to the others.
        if (spins < 200) std::this_thread::yield();
        else std::this_thread::sleep_for(std::chrono::microseconds(spins < 2000 ? 20 : 200));
    }
}

void MpiComm::check_point_to_point(int peer, bool sending) const {
    check_usable(sending ? "send" : "receive");
    check_peer(peer, sending ? "send peer" : "receive peer");
    if (peer == rank_)
        invalid("rank " + std::to_string(rank_) + (sending ? " cannot send to itself" : " cannot receive from itself"));
}

// An Isend or Irecv in flight; a request dropped before it completed is freed (MPI_Request_free), and the
// transfer finishes in the background.
class MpiComm::Request final : public xdit_comm_request {
public:
    Request(MpiComm& comm, mpi::Request request, const char* operation) : comm_(comm), request_(request), operation_(operation) {}
    ~Request() override {
        if (request_ != nullptr) mpi::api().Request_free(&request_);
    }
    void wait() override {
        if (request_ == nullptr) return;
        comm_.check_usable(operation_);
        comm_.wait(&request_, 1, operation_);  // MPI_Test sets the handle to null when it completes
    }

private:
    MpiComm& comm_;
    mpi::Request request_;
    const char* operation_;
};

xdit_comm_request* MpiComm::post_send(const void* data, int64_t bytes, int peer) {
    check_point_to_point(peer, true);
    const mpi::Api& m = mpi::api();
    mpi::Request request = nullptr;
    check(m.Isend(data, count(bytes, "send"), m.byte, peer, kSendTag, comm_, &request), "MPI_Isend");
    return new Request(*this, request, "send");
}

xdit_comm_request* MpiComm::post_receive(void* data, int64_t bytes, int peer) {
    check_point_to_point(peer, false);
    const mpi::Api& m = mpi::api();
    mpi::Request request = nullptr;
    check(m.Irecv(data, count(bytes, "receive"), m.byte, peer, kSendTag, comm_, &request), "MPI_Irecv");
    return new Request(*this, request, "receive");
}

MpiComm* MpiComm::split(int color, int key) {
    check_usable("split");
    mpi::Comm part = nullptr;
    check(mpi::api().Comm_split(comm_, color, key, &part), "MPI_Comm_split");
    return new MpiComm(part, timeout_);
}

void MpiComm::all_gather(const void* send, void* received, int64_t bytes) {
    check_usable("all_gather");
    const int n = count(bytes, "all_gather");
    mpi::Request request = nullptr;
    const mpi::Api& m = mpi::api();
    check(m.Iallgather(send, n, m.byte, received, n, m.byte, comm_, &request), "MPI_Iallgather");
    wait(&request, 1, "all_gather");
}

void MpiComm::all_to_all(const void* send, void* received, int64_t bytes_per_rank) {
    check_usable("all_to_all");
    const int n = count(bytes_per_rank, "all_to_all");
    mpi::Request request = nullptr;
    const mpi::Api& m = mpi::api();
    check(m.Ialltoall(send, n, m.byte, received, n, m.byte, comm_, &request), "MPI_Ialltoall");
    wait(&request, 1, "all_to_all");
}

void MpiComm::broadcast(void* data, int64_t bytes, int root) {
    check_usable("broadcast");
    check_peer(root, "broadcast root");
    mpi::Request request = nullptr;
    const mpi::Api& m = mpi::api();
    check(m.Ibcast(data, count(bytes, "broadcast"), m.byte, root, comm_, &request), "MPI_Ibcast");
    wait(&request, 1, "broadcast");
}

void MpiComm::shift(const void* send, void* received, int64_t bytes) {
    check_usable("shift");
    const int n = count(bytes, "shift");
    const mpi::Api& m = mpi::api();
    mpi::Request requests[2] = {nullptr, nullptr};
    check(m.Irecv(received, n, m.byte, (rank_ + size_ - 1) % size_, kShiftTag, comm_, &requests[0]), "MPI_Irecv");
    check(m.Isend(send, n, m.byte, (rank_ + 1) % size_, kShiftTag, comm_, &requests[1]), "MPI_Isend");
    wait(requests, 2, "shift");
}

void MpiComm::barrier() {
    check_usable("barrier");
    mpi::Request request = nullptr;
    check(mpi::api().Ibarrier(comm_, &request), "MPI_Ibarrier");
    wait(&request, 1, "barrier");
}

}  // namespace xdit
