// Graph capture for a backend without native graphs (the CPU): the backend the context issues its
// work to while capturing. Each op is kept as a call on the real backend with the same operands
// instead of being run, and launch() makes the calls again in order, so that a CPU graph has the
// semantics of a CUDA graph: nothing runs at capture, replays compute on the captured memory, host
// data written during capture is copied into the graph and written again at each launch, and
// anything that would need the work to have run (reading memory back, waiting, timing, another
// context's memory) is refused while capturing.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "backend.h"

namespace xdit {

class RecordingBackend final : public Backend {
public:
    explicit RecordingBackend(Backend& target) : target_(target) {}

    // The recorded calls as a graph; the recorder is empty afterwards.
    std::unique_ptr<Graph> finish();

    void* allocate_block(size_t bytes) override { return target_.allocate_block(bytes); }
    void free_block(void* block) override { target_.free_block(block); }
    const char* memory_name() const override { return target_.memory_name(); }
    void check_wrappable(const void* data) const override { target_.check_wrappable(data); }

    void write(void* destination, const void* source, size_t bytes) override;
    void read(void* destination, const void* source, size_t bytes) override;
    void memset(void* destination, int value, size_t bytes) override;
    void synchronize() override;
    std::unique_ptr<Mark> mark() override;

    void fill(const TensorDesc& out, double value) override;
    void copy(const TensorDesc& src, const TensorDesc& out) override;
    void copy_from(Backend& source, const TensorDesc& src, const TensorDesc& out) override;
    void map(const MapOp& op) override;
    void gemm(const GemmProblem& problem) override;
    void reduce_abs_sum(const TensorDesc& a, const TensorDesc* b, const TensorDesc& out) override;
    void softmax(const TensorDesc& x, const TensorDesc& out) override;
    void layer_norm(const NormArgs& args) override;
    void rms_norm(const NormArgs& args) override;
    void group_norm(const NormArgs& args) override;
    void group_norm_stats(const NormArgs& args) override;
    void attention(const AttentionArgs& args) override;
    void attention_merge(const MergeArgs& args) override;
    void rope(const RopeArgs& args) override;
    void conv2d(const ConvArgs& args) override;

    Backend& begin_capture() override;

private:
    [[noreturn]] void refuse(const char* what) const;

    Backend& target_;
    std::vector<std::function<void()>> calls_;
    std::vector<std::unique_ptr<char[]>> host_data_;  // what write() was given, kept for every launch
};

}  // namespace xdit
