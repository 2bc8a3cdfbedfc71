#include "nccl_comm.h"

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "../core/error.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "nccl_api.h"

namespace xdit {

namespace {

class NcclComm final : public xdit_comm {
public:
    NcclComm(std::shared_ptr<Context> context, cuda::CudaBackend& backend, nccl::Comm comm, int rank, int size, double timeout)
        : context_(std::move(context)), backend_(backend), comm_(comm), rank_(rank), size_(size), timeout_(timeout) {}

    ~NcclComm() override {
        // An aborted communicator is already released; a live one is destroyed once its work has drained,
        // or aborted when that takes longer than the timeout (a send no peer ever received).
        if (comm_ == nullptr) return;
        try {
            finish("draining before destroying the communicator");
        } catch (...) {
            return;  // finish aborted it
        }
        nccl::api().CommDestroy(comm_);
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }

    xdit_comm* split(int color, int key) override {
        usable("split");
        const nccl::Api& n = nccl::api();
        if (n.CommSplit == nullptr)
            fail(XDIT_STATUS_UNSUPPORTED, "split needs NCCL 2.18 or newer (ncclCommSplit); " + n.path + " lacks it");
        if (color < 0) invalid("split color " + std::to_string(color) + " must not be negative");
        nccl::Comm part = nullptr;
        int part_rank = 0, part_size = 1;
        {
            cuda::DeviceScope scope(backend_.device());
            check(n.CommSplit(comm_, color, key, &part, nullptr), "ncclCommSplit");
            check(n.CommUserRank(part, &part_rank), "ncclCommUserRank");
            check(n.CommCount(part, &part_size), "ncclCommCount");
        }
        return new NcclComm(context_, backend_, part, part_rank, part_size, timeout_);
    }

    void all_gather(const void* send, void* received, int64_t bytes) override {
        usable("all_gather");
        enqueue([&] { check(nccl::api().AllGather(send, received, count(bytes), nccl::kUint8, comm_, stream()), "ncclAllGather"); });
        finish("all_gather");
    }

    void all_to_all(const void* send, void* received, int64_t bytes_per_rank) override {
        usable("all_to_all");
        const size_t chunk = count(bytes_per_rank);
        const auto* from = static_cast<const char*>(send);
        auto* to = static_cast<char*>(received);
        enqueue([&] {
            // This rank's own chunk is a device copy; the others travel in one group of sends and receives.
            cuda::check(cudaMemcpyAsync(to + rank_ * chunk, from + rank_ * chunk, chunk, cudaMemcpyDeviceToDevice, stream()),
                        "cudaMemcpyAsync (all_to_all's own chunk)");
            grouped([&] {
                for (int q = 0; q < size_; ++q) {
                    if (q == rank_) continue;
                    check(nccl::api().Send(from + q * chunk, chunk, nccl::kUint8, q, comm_, stream()), "ncclSend");
                    check(nccl::api().Recv(to + q * chunk, chunk, nccl::kUint8, q, comm_, stream()), "ncclRecv");
                }
            });
        });
        finish("all_to_all");
    }

    void broadcast(void* data, int64_t bytes, int root) override {
        usable("broadcast");
        check_peer(root, "broadcast root");
        enqueue([&] { check(nccl::api().Broadcast(data, data, count(bytes), nccl::kUint8, root, comm_, stream()), "ncclBroadcast"); });
        finish("broadcast");
    }

    void shift(const void* send, void* received, int64_t bytes) override {
        usable("shift");
        enqueue([&] {
            if (size_ == 1) {
                cuda::check(cudaMemcpyAsync(received, send, count(bytes), cudaMemcpyDeviceToDevice, stream()), "cudaMemcpyAsync (shift)");
                return;
            }
            grouped([&] {
                check(nccl::api().Send(send, count(bytes), nccl::kUint8, (rank_ + 1) % size_, comm_, stream()), "ncclSend");
                check(nccl::api().Recv(received, count(bytes), nccl::kUint8, (rank_ + size_ - 1) % size_, comm_, stream()), "ncclRecv");
            });
        });
        finish("shift");
    }

    xdit_comm_request* post_send(const void* data, int64_t bytes, int peer) override {
        check_point_to_point(peer, "send");
        enqueue([&] { check(nccl::api().Send(data, count(bytes), nccl::kUint8, peer, comm_, stream()), "ncclSend"); });
        return new Request(*this, "send");
    }

    xdit_comm_request* post_receive(void* data, int64_t bytes, int peer) override {
        check_point_to_point(peer, "receive");
        enqueue([&] { check(nccl::api().Recv(data, count(bytes), nccl::kUint8, peer, comm_, stream()), "ncclRecv"); });
        return new Request(*this, "receive");
    }

    void barrier() override {
        usable("barrier");
        // One byte from every rank, gathered into scratch memory: NCCL has no barrier of its own.
        const ScratchBlock scratch(context_->allocator(), static_cast<size_t>(size_) + 1);
        auto* bytes = scratch.as<char>();
        enqueue([&] {
            cuda::check(cudaMemsetAsync(bytes, 0, 1, stream()), "cudaMemsetAsync (barrier)");
            check(nccl::api().AllGather(bytes, bytes + 1, 1, nccl::kUint8, comm_, stream()), "ncclAllGather (barrier)");
        });
        finish("barrier");
    }

private:
    // A send or receive on the stream: waiting is waiting for an event recorded after it.
    class Request final : public xdit_comm_request {
    public:
        Request(NcclComm& comm, const char* operation)
            : comm_(comm), operation_(operation), done_(comm.backend_.device(), comm.stream()) {}
        void wait() override {
            comm_.usable(operation_);
            comm_.wait_for(done_.event, operation_);
        }

    private:
        NcclComm& comm_;
        const char* operation_;
        cuda::StreamEvent done_;
    };

    cudaStream_t stream() const { return backend_.stream(); }

    template <class F>
    void enqueue(F&& body) {
        cuda::DeviceScope scope(backend_.device());
        body();
    }

    // The calls of `body` as one NCCL group. A call that fails inside the group is only recorded: the group
    // is closed first, and the communicator aborted after (aborting inside a group would leave the queued
    // calls on a released communicator).
    template <class F>
    void grouped(F&& body) {
        check(nccl::api().GroupStart(), "ncclGroupStart");
        in_group_ = true;
        group_error_.clear();
        try {
            body();
        } catch (...) {
            in_group_ = false;
            nccl::api().GroupEnd();
            throw;
        }
        in_group_ = false;
        const nccl::Result ended = nccl::api().GroupEnd();
        if (!group_error_.empty()) {
            abort(group_error_);
            fail(XDIT_STATUS_DEVICE_ERROR, where() + broken_);
        }
        check(ended, "ncclGroupEnd");
    }

    // Waits, bounded, for everything enqueued on the stream so far.
    void finish(const char* operation) {
        cuda::StreamEvent done(backend_.device(), stream());
        wait_for(done.event, operation);
    }

    void wait_for(cudaEvent_t event, const char* operation) {
        cuda::DeviceScope scope(backend_.device());
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_);
        for (int spins = 0;; ++spins) {
            const cudaError_t state = cudaEventQuery(event);
            if (state == cudaSuccess) return;
            if (state != cudaErrorNotReady) cuda::check(state, operation);
            cudaGetLastError();  // "not ready" may be left as the thread's last error; the next launch checks it
            nccl::Result async = nccl::kSuccess;
            nccl::api().CommGetAsyncError(comm_, &async);
            if (async != nccl::kSuccess && async != nccl::kInProgress) {
                abort(std::string(operation) + " failed: " + describe(async));
                fail(XDIT_STATUS_DEVICE_ERROR, where() + broken_);
            }
            if (std::chrono::steady_clock::now() > deadline) {
                abort(std::string(operation) + " timed out after " + std::to_string(static_cast<int>(timeout_)) + " s");
                fail(XDIT_STATUS_TIMEOUT, where() + broken_ + " (a rank failed, left, or called another collective)");
            }
            if (spins < 200) std::this_thread::yield();
            else std::this_thread::sleep_for(std::chrono::microseconds(spins < 2000 ? 20 : 200));
        }
    }

    // Aborting releases NCCL's kernels still waiting for a peer, so the stream drains and the context
    // stays usable; the communicator refuses everything after it.
    void abort(std::string reason) {
        broken_ = std::move(reason);
        if (comm_ != nullptr) nccl::api().CommAbort(comm_);
        comm_ = nullptr;
    }

    void check(nccl::Result result, const char* operation) {
        if (result == nccl::kSuccess || result == nccl::kInProgress) return;
        if (in_group_) {
            if (group_error_.empty()) group_error_ = std::string(operation) + " failed: " + describe(result);
            return;
        }
        abort(std::string(operation) + " failed: " + describe(result));
        fail(XDIT_STATUS_DEVICE_ERROR, where() + broken_);
    }

    std::string describe(nccl::Result result) const {
        std::string text = nccl::api().GetErrorString(result);
        if (nccl::api().GetLastError != nullptr && comm_ != nullptr) {
            const char* detail = nccl::api().GetLastError(comm_);
            if (detail != nullptr && *detail != '\0') text += std::string(": ") + detail;
        }
        return text;
    }

    std::string where() const { return "NCCL rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": "; }

    void usable(const char* operation) const {
        if (!broken_.empty()) fail(XDIT_STATUS_TIMEOUT, where() + operation + " on a communicator that already failed (" + broken_ + ")");
        if (context_->capturing())
            fail(XDIT_STATUS_UNSUPPORTED, where() + operation + " while a graph is being captured on the communicator's context " +
                                              "(collectives wait for their transfer, which a capture does not run)");
    }

    static size_t count(int64_t bytes) {
        if (bytes < 0) invalid("negative byte count");
        return static_cast<size_t>(bytes);
    }

    void check_peer(int peer, const char* what) const {
        if (peer < 0 || peer >= size_)
            invalid(std::string(what) + " " + std::to_string(peer) + " is outside the group of " + std::to_string(size_) + " ranks");
    }

    void check_point_to_point(int peer, const char* operation) const {
        usable(operation);
        check_peer(peer, (std::string(operation) + " peer").c_str());
        if (peer == rank_) invalid("rank " + std::to_string(rank_) + " cannot " + operation + " itself");
    }

    std::shared_ptr<Context> context_;
    cuda::CudaBackend& backend_;
    nccl::Comm comm_;
    int rank_;
    int size_;
    double timeout_;
    std::string broken_;
    bool in_group_ = false;
    std::string group_error_;  // the first call that failed inside the open group
};

}  // namespace

xdit_comm* create_nccl_comm(std::shared_ptr<Context> context, const uint8_t* id, int rank, int size, double timeout_seconds) {
    auto* backend = dynamic_cast<cuda::CudaBackend*>(&context->backend());
    if (backend == nullptr)
        fail(XDIT_STATUS_UNSUPPORTED, std::string("NCCL moves device memory: its context must be a CUDA context, not ") +
                                          context->backend().memory_name());
    if (size < 1 || rank < 0 || rank >= size)
        invalid("NCCL rank " + std::to_string(rank) + " of " + std::to_string(size) + ": the rank must be in [0, size)");
    const nccl::Api& n = nccl::api();
    nccl::UniqueId unique{};
    std::memcpy(unique.internal, id, nccl::kUniqueIdBytes);
    nccl::Comm comm = nullptr;
    {
        cuda::DeviceScope scope(backend->device());
        const nccl::Result result = n.CommInitRank(&comm, size, unique, rank);
        if (result != nccl::kSuccess)
            fail(XDIT_STATUS_DEVICE_ERROR, "ncclCommInitRank (rank " + std::to_string(rank) + " of " + std::to_string(size) + " on " +
                                               backend->memory_name() + ") failed: " + n.GetErrorString(result) +
                                               " — NCCL needs one GPU per rank; ranks sharing a GPU use the in-process communicator");
    }
    return new NcclComm(std::move(context), *backend, comm, rank, size, timeout_seconds);
}

}  // namespace xdit
