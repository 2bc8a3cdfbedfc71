#include "thread_pool.h"

#include <algorithm>

namespace xdit {

ThreadPool::ThreadPool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks() {
    for (;;) {
        int64_t chunk;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (next_chunk_ >= chunks_) return;
            chunk = next_chunk_++;
        }
        const int64_t begin = chunk * chunk_;
        const int64_t end = std::min(count_, begin + chunk_);
        try {
            (*body_)(begin, end);
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }
}

void ThreadPool::worker_loop() {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
            ++active_;
        }
        run_chunks();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--active_ == 0) done_.notify_all();
        }
    }
}

void ThreadPool::parallel_for(int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
    if (count <= 0) return;
    grain = std::max<int64_t>(grain, 1);
    const int64_t max_chunks = (count + grain - 1) / grain;
    if (workers_.empty() || max_chunks == 1) {
        body(0, count);
        return;
    }
    std::lock_guard<std::mutex> submit(submit_mutex_);
    // A few chunks per thread balance uneven work without much locking.
    const int64_t chunks = std::min<int64_t>(max_chunks, int64_t(size()) * 4);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        body_ = &body;
        count_ = count;
        chunk_ = (count + chunks - 1) / chunks;
        chunks_ = (count + chunk_ - 1) / chunk_;
        next_chunk_ = 0;
        error_ = nullptr;
        ++generation_;
    }
    wake_.notify_all();
    run_chunks();
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return active_ == 0; });
        error = error_;
        body_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace xdit
