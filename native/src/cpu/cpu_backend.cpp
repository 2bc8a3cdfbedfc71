#include "cpu_backend.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "element.h"
#include "openblas.h"
#include "strided.h"

namespace xdit {

std::unique_ptr<Backend> create_cpu_backend(xdit_context_options& options) {
    if (options.num_threads == 0) options.num_threads = std::max(1u, std::thread::hardware_concurrency());
    bool use_openblas = false;
    switch (options.cpu_gemm) {
        case XDIT_CPU_GEMM_OPENBLAS:
            if (openblas() == nullptr)
                fail(XDIT_STATUS_UNAVAILABLE,
                     "OpenBLAS was requested but libopenblas.so.0 could not be loaded (install libopenblas0 or set "
                     "XDIT_OPENBLAS_LIB)");
            use_openblas = true;
            break;
        case XDIT_CPU_GEMM_BUILTIN: break;
        default: use_openblas = openblas() != nullptr; break;
    }
    options.cpu_gemm = use_openblas ? XDIT_CPU_GEMM_OPENBLAS : XDIT_CPU_GEMM_BUILTIN;

    bool use_avx2 = false;
    switch (options.cpu_isa) {
        case XDIT_CPU_ISA_AVX2:
            if (!cpu::cpu_has_avx2_fma())
                fail(XDIT_STATUS_UNAVAILABLE, "AVX2 kernels were requested but this processor lacks AVX2 or FMA");
            use_avx2 = true;
            break;
        case XDIT_CPU_ISA_BASELINE: break;
        default: use_avx2 = cpu::cpu_has_avx2_fma(); break;
    }
    options.cpu_isa = use_avx2 ? XDIT_CPU_ISA_AVX2 : XDIT_CPU_ISA_BASELINE;
    return std::make_unique<cpu::CpuBackend>(options.num_threads, use_openblas,
                                             use_avx2 ? cpu::avx2_attention_tiles() : cpu::baseline_attention_tiles());
}

namespace cpu {

CpuBackend::CpuBackend(int threads, bool use_openblas, const AttentionTiles& attention_tiles)
    : pool_(threads), use_openblas_(use_openblas), attention_tiles_(&attention_tiles) {}

void* CpuBackend::allocate_block(size_t bytes) { return std::aligned_alloc(CachingAllocator::kAlignment, bytes); }

void CpuBackend::free_block(void* block) { std::free(block); }

void CpuBackend::write(void* destination, const void* source, size_t bytes) { std::memcpy(destination, source, bytes); }

void CpuBackend::read(void* destination, const void* source, size_t bytes) { std::memcpy(destination, source, bytes); }

void CpuBackend::memset(void* destination, int value, size_t bytes) { std::memset(destination, value, bytes); }

void CpuBackend::fill(const TensorDesc& out, double value) {
    dispatch_dtype(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        T v;
        if constexpr (is_float_type<T>) v = from_float<T>(static_cast<float>(value));
        else if constexpr (std::is_same_v<T, bool>) v = value != 0.0;
        else v = static_cast<T>(value);
        for_each_strided<1>(pool_, {&out}, [&](int64_t n, const std::array<char*, 1>& p, const std::array<int64_t, 1>& s) {
            T* o = reinterpret_cast<T*>(p[0]);
            for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;
        });
    });
}

void CpuBackend::copy(const TensorDesc& src, const TensorDesc& out) {
    dispatch_dtype(src.dtype, [&](auto src_tag) {
        using S = decltype(src_tag);
        dispatch_dtype(out.dtype, [&](auto out_tag) {
            using D = decltype(out_tag);
            for_each_strided<2>(pool_, {&src, &out},
                                [&](int64_t n, const std::array<char*, 2>& p, const std::array<int64_t, 2>& s) {
                                    const S* in = reinterpret_cast<const S*>(p[0]);
                                    D* o = reinterpret_cast<D*>(p[1]);
                                    for (int64_t i = 0; i < n; ++i) o[i * s[1]] = convert<S, D>(in[i * s[0]]);
                                });
        });
    });
}

namespace {

// CPU work is finished when its call returns: the host clock marks it.
class ClockMark final : public Mark {
public:
    double milliseconds_since(const Mark& start) const override {
        const auto& earlier = dynamic_cast<const ClockMark&>(start);
        return std::chrono::duration<double, std::milli>(time_ - earlier.time_).count();
    }

private:
    std::chrono::steady_clock::time_point time_ = std::chrono::steady_clock::now();
};

}  // namespace

std::unique_ptr<Mark> CpuBackend::mark() { return std::make_unique<ClockMark>(); }

void CpuBackend::copy_from(Backend& source, const TensorDesc& src, const TensorDesc& out) {
    if (dynamic_cast<CpuBackend*>(&source) == nullptr)
        fail(XDIT_STATUS_UNSUPPORTED, std::string("a CPU context copies from other CPU contexts only; the source is ") +
                                          source.memory_name() + " memory (copy through the host first)");
    // Host memory is one address space, and CPU work has finished when its call returns: nothing to order.
    copy(src, out);
}

}  // namespace cpu
}  // namespace xdit
