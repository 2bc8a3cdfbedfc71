#include "allocator.h"

#include <iterator>
#include <string>

#include "error.h"

namespace xdit {

namespace {
constexpr size_t kMiB = size_t(1) << 20;

std::string mib(uint64_t bytes) { return std::to_string((bytes + kMiB / 2) / kMiB) + " MiB"; }
}  // namespace

CachingAllocator::~CachingAllocator() {
    try {
        release_cached_locked();
    } catch (...) {
        // The device failed (a sticky CUDA error): what is left goes with the process.
    }
}

size_t CachingAllocator::round_size(size_t bytes) {
    // Small blocks round to the alignment; large ones to 2 MiB so that slightly different sizes
    // (a batch of 3 after a batch of 4) still share cached blocks.
    const size_t granule = bytes < 16 * kMiB ? kAlignment : 2 * kMiB;
    return (bytes + granule - 1) / granule * granule;
}

void* CachingAllocator::take_fitting(std::multimap<size_t, void*>& blocks, size_t size, size_t* got) {
    auto it = blocks.lower_bound(size);
    if (it == blocks.end() || it->first > size + size / 4) return nullptr;
    void* block = it->second;
    *got = it->first;
    blocks.erase(it);
    return block;
}

void* CachingAllocator::allocate(size_t bytes, size_t* block_bytes) {
    if (bytes > (size_t(1) << 50)) fail(XDIT_STATUS_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes");
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (limit_ != 0 && stats_.bytes_in_use + size > limit_)
        fail(XDIT_STATUS_OUT_OF_MEMORY, "allocating " + mib(size) + " of " + source_.memory_name() +
                                            " memory would exceed the context's limit of " + mib(limit_) + " (" +
                                            mib(stats_.bytes_in_use) + " in use)");
    size_t got = size;
    void* block = capturing_ ? take_fitting(capturing_->free_blocks, size, &got) : nullptr;
    if (block == nullptr) block = take_fitting(cache_, size, &got);
    if (block != nullptr) {
        stats_.bytes_cached -= got;
        ++stats_.cache_hit_count;
    } else {
        got = size;
        block = source_.allocate_block(size);
        // Give the cache back and try once more; not while capturing, when freeing device memory
        // would break the capture.
        if (block == nullptr && !cache_.empty() && capturing_ == nullptr) {
            release_cached_locked();
            block = source_.allocate_block(size);
        }
        if (block == nullptr)
            fail(XDIT_STATUS_OUT_OF_MEMORY, "out of " + std::string(source_.memory_name()) + " memory allocating " +
                                                mib(size) + " (" + mib(stats_.bytes_in_use) + " in use)");
        stats_.bytes_reserved += size;
    }
    if (capturing_) pool_of_[block] = capturing_;
    stats_.bytes_in_use += got;
    if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
    ++stats_.allocation_count;
    *block_bytes = got;
    return block;
}

void CachingAllocator::free(void* block, size_t block_bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.bytes_in_use -= block_bytes;
    stats_.bytes_cached += block_bytes;
    auto owner = pool_of_.find(block);
    // A block freed while a graph is captured may be one the captured work uses (allocated before the
    // capture): it joins that graph's pool, so that no eager work gets it between replays.
    if (owner == pool_of_.end() && capturing_ != nullptr) owner = pool_of_.emplace(block, capturing_).first;
    (owner == pool_of_.end() ? cache_ : owner->second->free_blocks).emplace(block_bytes, block);
}

void CachingAllocator::begin_pool(GraphPool* pool) {
    std::lock_guard<std::mutex> lock(mutex_);
    capturing_ = pool;
}

void CachingAllocator::end_pool() {
    std::lock_guard<std::mutex> lock(mutex_);
    capturing_ = nullptr;
}

void CachingAllocator::release_pool(GraphPool* pool) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (capturing_ == pool) capturing_ = nullptr;
    for (auto it = pool_of_.begin(); it != pool_of_.end();) it = it->second == pool ? pool_of_.erase(it) : std::next(it);
    cache_.insert(pool->free_blocks.begin(), pool->free_blocks.end());
    pool->free_blocks.clear();
}

void CachingAllocator::release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
    // Only the shared cache: a graph's free blocks stay reserved for its replays. Each entry leaves the
    // cache before its memory goes back, so a failure midway never frees a block twice.
    while (!cache_.empty()) {
        const auto [bytes, block] = *cache_.begin();
        cache_.erase(cache_.begin());
        stats_.bytes_reserved -= bytes;
        stats_.bytes_cached -= bytes;
        source_.free_block(block);
    }
}

void CachingAllocator::reset_peak() {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

xdit_allocator_stats CachingAllocator::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

}  // namespace xdit
