#include "recording_backend.h"

#include <cstring>
#include <string>

namespace xdit {

namespace {

class RecordedGraph final : public Graph {
public:
    RecordedGraph(std::vector<std::function<void()>> calls, std::vector<std::unique_ptr<char[]>> host_data)
        : calls_(std::move(calls)), host_data_(std::move(host_data)) {}

    void launch() override {
        for (const auto& call : calls_) call();
    }
    int64_t node_count() const override { return static_cast<int64_t>(calls_.size()); }

private:
    std::vector<std::function<void()>> calls_;
    std::vector<std::unique_ptr<char[]>> host_data_;
};

}  // namespace

Backend::Backend() = default;
Backend::~Backend() = default;

Backend& Backend::begin_capture() {
    recorder_ = std::make_unique<RecordingBackend>(*this);
    return *recorder_;
}

std::unique_ptr<Graph> Backend::end_capture() {
    if (!recorder_) fail(XDIT_STATUS_INTERNAL, "end_capture without begin_capture");
    auto graph = recorder_->finish();
    recorder_.reset();
    return graph;
}

std::unique_ptr<Graph> RecordingBackend::finish() {
    return std::make_unique<RecordedGraph>(std::move(calls_), std::move(host_data_));
}

void RecordingBackend::refuse(const char* what) const { refuse_during_capture(memory_name(), what); }

void RecordingBackend::write(void* destination, const void* source, size_t bytes) {
    auto copy = std::make_unique<char[]>(bytes);
    std::memcpy(copy.get(), source, bytes);
    const char* data = copy.get();
    host_data_.push_back(std::move(copy));
    calls_.push_back([&target = target_, destination, data, bytes] { target.write(destination, data, bytes); });
}

void RecordingBackend::read(void*, const void*, size_t) { refuse("reading memory back"); }
void RecordingBackend::synchronize() { refuse("waiting for the context's work"); }
std::unique_ptr<Mark> RecordingBackend::mark() { refuse("a timing mark"); }
void RecordingBackend::copy_from(Backend&, const TensorDesc&, const TensorDesc&) { refuse("copying another context's memory"); }
Backend& RecordingBackend::begin_capture() { fail(XDIT_STATUS_INVALID_ARGUMENT, "a graph is already being captured on this context"); }

void RecordingBackend::memset(void* destination, int value, size_t bytes) {
    calls_.push_back([&target = target_, destination, value, bytes] { target.memset(destination, value, bytes); });
}

// The operands are plain descriptors (pointers into the context's memory, which the graph's pool
// keeps), so each call is kept by value.
void RecordingBackend::fill(const TensorDesc& out, double value) {
    calls_.push_back([&target = target_, out, value] { target.fill(out, value); });
}
void RecordingBackend::copy(const TensorDesc& src, const TensorDesc& out) {
    calls_.push_back([&target = target_, src, out] { target.copy(src, out); });
}
void RecordingBackend::map(const MapOp& op) {
    calls_.push_back([&target = target_, op] { target.map(op); });
}
void RecordingBackend::gemm(const GemmProblem& problem) {
    calls_.push_back([&target = target_, problem] { target.gemm(problem); });
}
void RecordingBackend::reduce_abs_sum(const TensorDesc& a, const TensorDesc* b, const TensorDesc& out) {
    const bool has_b = b != nullptr;
    const TensorDesc b_copy = has_b ? *b : TensorDesc{};
    calls_.push_back([&target = target_, a, has_b, b_copy, out] { target.reduce_abs_sum(a, has_b ? &b_copy : nullptr, out); });
}
void RecordingBackend::softmax(const TensorDesc& x, const TensorDesc& out) {
    calls_.push_back([&target = target_, x, out] { target.softmax(x, out); });
}
void RecordingBackend::layer_norm(const NormArgs& args) {
    calls_.push_back([&target = target_, args] { target.layer_norm(args); });
}
void RecordingBackend::rms_norm(const NormArgs& args) {
    calls_.push_back([&target = target_, args] { target.rms_norm(args); });
}
void RecordingBackend::group_norm(const NormArgs& args) {
    calls_.push_back([&target = target_, args] { target.group_norm(args); });
}
void RecordingBackend::group_norm_stats(const NormArgs& args) {
    calls_.push_back([&target = target_, args] { target.group_norm_stats(args); });
}
void RecordingBackend::attention(const AttentionArgs& args) {
    calls_.push_back([&target = target_, args] { target.attention(args); });
}
void RecordingBackend::attention_merge(const MergeArgs& args) {
    calls_.push_back([&target = target_, args] { target.attention_merge(args); });
}
void RecordingBackend::rope(const RopeArgs& args) {
    calls_.push_back([&target = target_, args] { target.rope(args); });
}
void RecordingBackend::conv2d(const ConvArgs& args) {
    calls_.push_back([&target = target_, args] { target.conv2d(args); });
}

}  // namespace xdit
