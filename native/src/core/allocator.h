// A caching allocator per context: freed blocks are kept by size and handed out again, so that a
// denoising loop that allocates the same temporaries every step stops calling the system (or
// cudaMalloc, which synchronises the device). Blocks are reused in stream order, which is safe
// because every context has exactly one stream.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

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

// The memory of one captured graph (xdit_graph): every block its work was captured with. A replay
// writes those same addresses again, so a block of the pool that the caller frees goes back to the
// pool, never to the shared cache, until the graph is released.
struct GraphPool {
    std::multimap<size_t, void*> free_blocks;
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

    // While a graph is captured, allocations come from (and join) `pool`: its free blocks first, then
    // the shared cache, then the system.
    void begin_pool(GraphPool* pool);
    void end_pool();
    // The pool's graph is gone: its free blocks join the shared cache, and blocks still in use become
    // ordinary ones.
    void release_pool(GraphPool* pool);

private:
    static size_t round_size(size_t bytes);
    // Takes the smallest block of `blocks` that fits `size` without wasting more than a quarter of it.
    static void* take_fitting(std::multimap<size_t, void*>& blocks, size_t size, size_t* got);
    void release_cached_locked();

    MemorySource& source_;
    const uint64_t limit_;
    mutable std::mutex mutex_;
    std::multimap<size_t, void*> cache_;
    GraphPool* capturing_ = nullptr;
    std::unordered_map<void*, GraphPool*> pool_of_;  // blocks that belong to a graph
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
