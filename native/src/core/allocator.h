// A caching allocator per context: freed blocks are kept by size and handed out again, so that a
// denoising loop that allocates the same temporaries every step stops calling the system (or
// cudaMalloc, which synchronises the device). Blocks are reused in stream order, which is safe
// because every context has exactly one stream.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "xdit/xdit.h"

namespace xdit {

// Where the allocator's blocks come from: host memory or one CUDA device.
class MemorySource {
public:
    virtual ~MemorySource() = default;
    virtual void* allocate_block(size_t bytes) = 0;  // nullptr when the system refuses
    virtual void free_block(void* block) = 0;
    virtual const char* memory_name() const = 0;     // "host", "cuda:0"
};

class CachingAllocator {
public:
    static constexpr size_t kAlignment = 256;

    CachingAllocator(MemorySource& source, uint64_t limit_bytes) : source_(source), limit_(limit_bytes) {}
    ~CachingAllocator();
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    // Returns a block of at least `bytes` (its real size in *block_bytes); throws
    // XDIT_STATUS_OUT_OF_MEMORY with the allocator's state in the message.
    void* allocate(size_t bytes, size_t* block_bytes);
    void free(void* block, size_t block_bytes);
    void release_cached();
    void reset_peak();
    xdit_allocator_stats stats() const;

private:
    static size_t round_size(size_t bytes);
    void release_cached_locked();

    MemorySource& source_;
    const uint64_t limit_;
    mutable std::mutex mutex_;
    std::multimap<size_t, void*> cache_;
    xdit_allocator_stats stats_{};
};

// Scratch memory for the duration of one op, from the context's allocator (so that it shows in
// the statistics and is reused across calls). For device memory, the op's own stream orders reuse.
class ScratchBlock {
public:
    ScratchBlock(CachingAllocator& allocator, size_t bytes)
        : allocator_(allocator), data_(bytes ? allocator.allocate(bytes, &block_bytes_) : nullptr) {}
    ~ScratchBlock() {
        if (data_) allocator_.free(data_, block_bytes_);
    }
    ScratchBlock(const ScratchBlock&) = delete;
    ScratchBlock& operator=(const ScratchBlock&) = delete;
    void* data() const { return data_; }
    template <class T>
    T* as() const { return static_cast<T*>(data_); }

private:
    CachingAllocator& allocator_;
    size_t block_bytes_ = 0;
    void* data_;
};

}  // namespace xdit
