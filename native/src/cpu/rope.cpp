// Rotary position embedding applied to q or k, in the two pairings diffusers uses: interleaved
// pairs (2i, 2i+1) as Flux does, and halves (i, i + D/2) as the rotate-half form does.
#include "cpu_backend.h"
#include "element.h"
#include "rows.h"

namespace xdit::cpu {

void CpuBackend::rope(const RopeArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto x_tag) {
        using T = decltype(x_tag);
        dispatch_float_dtype(a.cos.dtype, [&](auto table_tag) {
            using C = decltype(table_tag);
            if (a.sin.dtype != a.cos.dtype) invalid("cos and sin must have one dtype");
            const Rows<4> rows({&a.x, &a.cos, &a.sin, &a.out});
            const int64_t d = rows.length(), half = d / 2;
            pool_.parallel_for(rows.count(), std::max<int64_t>(1, 4096 / d), [&](int64_t r0, int64_t r1) {
                for (int64_t r = r0; r < r1; ++r) {
                    const T* x = rows.row<const T>(0, r);
                    const C* cos = rows.row<const C>(1, r);
                    const C* sin = rows.row<const C>(2, r);
                    T* out = rows.row<T>(3, r);
                    const int64_t sx = rows.inner_stride(0), sc = rows.inner_stride(1), ss = rows.inner_stride(2),
                                  so = rows.inner_stride(3);
                    for (int64_t i = 0; i < half; ++i) {
                        // The two members of a rotated pair; both are read before either is written.
                        const int64_t p = a.interleaved ? 2 * i : i;
                        const int64_t q = a.interleaved ? 2 * i + 1 : i + half;
                        const float x0 = to_float(x[p * sx]), x1 = to_float(x[q * sx]);
                        out[p * so] = from_float<T>(x0 * to_float(cos[p * sc]) - x1 * to_float(sin[p * ss]));
                        out[q * so] = from_float<T>(x1 * to_float(cos[q * sc]) + x0 * to_float(sin[q * ss]));
                    }
                }
            });
        });
    });
}

}  // namespace xdit::cpu
