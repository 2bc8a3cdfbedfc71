// A fixed set of worker threads owned by one CPU context: the context's share of the cores. Work is
// fork-join: parallel_for returns when every chunk has run. The calling thread takes part, so a
// pool of n threads starts n - 1 workers.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace xdit {

class ThreadPool {
public:
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return static_cast<int>(workers_.size()) + 1; }

    // Calls body(begin, end) on disjoint chunks covering [0, count), each at least `grain` long
    // (except the last). Exceptions thrown by a chunk are rethrown here after all chunks finished.
    void parallel_for(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body);

private:
    void worker_loop();
    void run_chunks();

    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::mutex submit_mutex_;  // one parallel_for at a time per pool
    std::condition_variable wake_;
    std::condition_variable done_;
    bool stopping_ = false;
    uint64_t generation_ = 0;
    int active_ = 0;

    // The job in flight.
    const std::function<void(int64_t, int64_t)>* body_ = nullptr;
    int64_t count_ = 0, chunk_ = 0, chunks_ = 0;
    int64_t next_chunk_ = 0;
    std::exception_ptr error_;
};

}  // namespace xdit
