#include "allocator.h"

#include <string>

#include "error.h"

namespace xdit {

namespace {
constexpr size_t kMiB = size_t(1) << 20;

std::string mib(uint64_t bytes) { return std::to_string((bytes + kMiB / 2) / kMiB) + " MiB"; }
}  // namespace

CachingAllocator::~CachingAllocator() { release_cached_locked(); }

size_t CachingAllocator::round_size(size_t bytes) {
    // Small blocks round to the alignment; large ones to 2 MiB so that slightly different sizes
    // (a batch of 3 after a batch of 4) still share cached blocks.
    const size_t granule = bytes < 16 * kMiB ? kAlignment : 2 * kMiB;
    return (bytes + granule - 1) / granule * granule;
}

void* CachingAllocator::allocate(size_t bytes, size_t* block_bytes) {
    if (bytes > (size_t(1) << 50)) fail(XDIT_STATUS_OUT_OF_MEMORY, "cannot allocate " + std::to_string(bytes) + " bytes");
    const size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (limit_ != 0 && stats_.bytes_in_use + size > limit_)
        fail(XDIT_STATUS_OUT_OF_MEMORY, "allocating " + mib(size) + " of " + source_.memory_name() +
                                            " memory would exceed the context's limit of " + mib(limit_) + " (" +
                                            mib(stats_.bytes_in_use) + " in use)");
    // Reuse the smallest cached block that fits without wasting more than a quarter of it.
    auto it = cache_.lower_bound(size);
    void* block = nullptr;
    size_t got = size;
    if (it != cache_.end() && it->first <= size + size / 4) {
        block = it->second;
        got = it->first;
        cache_.erase(it);
        stats_.bytes_cached -= got;
        ++stats_.cache_hit_count;
    } else {
        block = source_.allocate_block(size);
        if (block == nullptr && !cache_.empty()) {
            release_cached_locked();  // give the cache back and try once more
            block = source_.allocate_block(size);
        }
        if (block == nullptr)
            fail(XDIT_STATUS_OUT_OF_MEMORY, "out of " + std::string(source_.memory_name()) + " memory allocating " +
                                                mib(size) + " (" + mib(stats_.bytes_in_use) + " in use)");
        stats_.bytes_reserved += size;
    }
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
    cache_.emplace(block_bytes, block);
}

void CachingAllocator::release_cached() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_cached_locked();
}

void CachingAllocator::release_cached_locked() {
    for (auto& entry : cache_) {
        source_.free_block(entry.second);
        stats_.bytes_reserved -= entry.first;
    }
    cache_.clear();
    stats_.bytes_cached = 0;
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
