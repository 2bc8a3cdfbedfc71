// Pointwise maps (arithmetic, activations, guidance lerp, gated residual, GEGLU) and the L1
// reduction of step caching, on the context's threads. Values are widened to fp32 for the math.
#include <algorithm>
#include <cmath>
#include <vector>

#include "activation.h"
#include "cpu_backend.h"
#include "element.h"
#include "strided.h"

namespace xdit::cpu {

namespace {

template <class T>
void run_map(ThreadPool& pool, const MapOp& op) {
    // Unused input slots alias out: their strides are valid and they are never read.
    const TensorDesc& a = op.inputs[0];
    const TensorDesc& b = op.arity > 1 ? op.inputs[1] : op.out;
    const TensorDesc& c = op.arity > 2 ? op.inputs[2] : op.out;
    const float p0 = static_cast<float>(op.p0), p1 = static_cast<float>(op.p1);
    for_each_strided<4>(pool, {&a, &b, &c, &op.out},
                        [&](int64_t n, const std::array<char*, 4>& p, const std::array<int64_t, 4>& s) {
                            const T* x = reinterpret_cast<const T*>(p[0]);
                            const T* y = reinterpret_cast<const T*>(p[1]);
                            const T* z = reinterpret_cast<const T*>(p[2]);
                            T* o = reinterpret_cast<T*>(p[3]);
                            auto X = [&](int64_t i) { return to_float(x[i * s[0]]); };
                            auto Y = [&](int64_t i) { return to_float(y[i * s[1]]); };
                            auto Z = [&](int64_t i) { return to_float(z[i * s[2]]); };
                            auto put = [&](int64_t i, float v) { o[i * s[3]] = from_float<T>(v); };
                            switch (op.kind) {
                                case MapKind::Binary:
                                    switch (op.code) {
                                        case XDIT_BINARY_ADD: for (int64_t i = 0; i < n; ++i) put(i, X(i) + Y(i)); break;
                                        case XDIT_BINARY_SUB: for (int64_t i = 0; i < n; ++i) put(i, X(i) - Y(i)); break;
                                        case XDIT_BINARY_MUL: for (int64_t i = 0; i < n; ++i) put(i, X(i) * Y(i)); break;
                                        case XDIT_BINARY_MAX: for (int64_t i = 0; i < n; ++i) put(i, std::fmax(X(i), Y(i))); break;
                                        default: for (int64_t i = 0; i < n; ++i) put(i, X(i) / Y(i)); break;
                                    }
                                    break;
                                case MapKind::Unary: for (int64_t i = 0; i < n; ++i) put(i, unary(op.code, X(i))); break;
                                case MapKind::Affine: for (int64_t i = 0; i < n; ++i) put(i, p0 * X(i) + p1); break;
                                case MapKind::Clamp: for (int64_t i = 0; i < n; ++i) put(i, std::fmin(std::fmax(X(i), p0), p1)); break;
                                case MapKind::Lerp: for (int64_t i = 0; i < n; ++i) put(i, X(i) + p0 * (Y(i) - X(i))); break;
                                case MapKind::AddMul: for (int64_t i = 0; i < n; ++i) put(i, X(i) + Y(i) * Z(i)); break;
                                case MapKind::Gated: for (int64_t i = 0; i < n; ++i) put(i, unary(op.code, X(i)) * Y(i)); break;
                            }
                        });
}

}  // namespace

void CpuBackend::map(const MapOp& op) {
    dispatch_float_dtype(op.out.dtype, [&](auto tag) { run_map<decltype(tag)>(pool_, op); });
}

void CpuBackend::reduce_abs_sum(const TensorDesc& a, const TensorDesc* b, const TensorDesc& out) {
    dispatch_float_dtype(a.dtype, [&](auto tag) {
        using T = decltype(tag);
        const StridedSpace<2> space({&a, b ? b : &a});
        // Fixed chunks with fp64 partial sums added in chunk order: the result does not depend on
        // the thread count or timing.
        constexpr int64_t kChunk = 1 << 16;
        const int64_t chunks = (space.total + kChunk - 1) / kChunk;
        std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
        pool_.parallel_for(chunks, 1, [&](int64_t first, int64_t last) {
            for (int64_t chunk = first; chunk < last; ++chunk) {
                double sum = 0;
                space.for_range(chunk * kChunk, std::min(space.total, (chunk + 1) * kChunk),
                                [&](int64_t n, const std::array<char*, 2>& p, const std::array<int64_t, 2>& s) {
                                    const T* x = reinterpret_cast<const T*>(p[0]);
                                    const T* y = reinterpret_cast<const T*>(p[1]);
                                    if (b)
                                        for (int64_t i = 0; i < n; ++i)
                                            sum += std::fabs(double(to_float(x[i * s[0]])) - double(to_float(y[i * s[1]])));
                                    else
                                        for (int64_t i = 0; i < n; ++i) sum += std::fabs(double(to_float(x[i * s[0]])));
                                });
                partial[static_cast<size_t>(chunk)] = sum;
            }
        });
        double total = 0;
        for (double p : partial) total += p;
        *static_cast<float*>(out.data) = static_cast<float>(total);
    });
}

}  // namespace xdit::cpu
