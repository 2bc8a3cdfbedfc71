// Layer norm (with the fused adaLN modulation), RMS norm, group norm and softmax. Statistics are
// accumulated in fp64, so the result is the fp32 rounding of the exact value for any row length.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu_backend.h"
#include "element.h"
#include "rows.h"
#include "strided.h"

namespace xdit::cpu {

namespace {

// A [C] parameter vector widened to fp32, or empty when absent.
template <class T>
std::vector<float> widen(const std::optional<TensorDesc>& t) {
    std::vector<float> values;
    if (!t) return values;
    values.resize(static_cast<size_t>(t->shape[0]));
    const T* data = static_cast<const T*>(t->data);
    for (size_t i = 0; i < values.size(); ++i) values[i] = to_float(data[int64_t(i) * t->strides[0]]);
    return values;
}

}  // namespace

void CpuBackend::layer_norm(const NormArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const std::vector<float> weight = widen<T>(a.weight), bias = widen<T>(a.bias);
        // Absent scale/shift alias x: valid strides, never read.
        const Rows<4> rows({&a.x, &a.out, a.scale ? &*a.scale : &a.x, a.shift ? &*a.shift : &a.x});
        const int64_t c = rows.length();
        pool_.parallel_for(rows.count(), std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const T* x = rows.row<const T>(0, r);
                T* out = rows.row<T>(1, r);
                const T* scale = rows.row<const T>(2, r);
                const T* shift = rows.row<const T>(3, r);
                const int64_t sx = rows.inner_stride(0), so = rows.inner_stride(1), ss = rows.inner_stride(2),
                              sh = rows.inner_stride(3);
                double sum = 0, squares = 0;
                for (int64_t i = 0; i < c; ++i) sum += to_float(x[i * sx]);
                const double mean = sum / double(c);
                for (int64_t i = 0; i < c; ++i) {
                    const double d = to_float(x[i * sx]) - mean;
                    squares += d * d;
                }
                const double inv = 1.0 / std::sqrt(squares / double(c) + a.eps);
                for (int64_t i = 0; i < c; ++i) {
                    double y = (to_float(x[i * sx]) - mean) * inv;
                    if (!weight.empty()) y *= weight[size_t(i)];
                    if (!bias.empty()) y += bias[size_t(i)];
                    if (a.scale) y *= 1.0 + to_float(scale[i * ss]);
                    if (a.shift) y += to_float(shift[i * sh]);
                    out[i * so] = from_float<T>(static_cast<float>(y));
                }
            }
        });
    });
}

void CpuBackend::rms_norm(const NormArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const std::vector<float> weight = widen<T>(a.weight);
        const Rows<2> rows({&a.x, &a.out});
        const int64_t c = rows.length();
        pool_.parallel_for(rows.count(), std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const T* x = rows.row<const T>(0, r);
                T* out = rows.row<T>(1, r);
                const int64_t sx = rows.inner_stride(0), so = rows.inner_stride(1);
                double squares = 0;
                for (int64_t i = 0; i < c; ++i) {
                    const double v = to_float(x[i * sx]);
                    squares += v * v;
                }
                const double inv = 1.0 / std::sqrt(squares / double(c) + a.eps);
                for (int64_t i = 0; i < c; ++i) {
                    double y = to_float(x[i * sx]) * inv;
                    if (!weight.empty()) y *= weight[size_t(i)];
                    out[i * so] = from_float<T>(static_cast<float>(y));
                }
            }
        });
    });
}

namespace {

// One channel plane of t: the [spatial...] view of (sample, channel).
TensorDesc channel_plane(const TensorDesc& t, int64_t sample, int64_t channel) {
    TensorDesc p = t;
    p.rank = t.rank - 2;
    for (int d = 0; d < p.rank; ++d) {
        p.shape[d] = t.shape[d + 2];
        p.strides[d] = t.strides[d + 2];
    }
    p.data = static_cast<char*>(t.data) + (sample * t.strides[0] + channel * t.strides[1]) * int64_t(t.element_size());
    return p;
}

// Mean and Σ(x − mean)² of one (sample, group) in fp64, in two passes; count is its element count.
template <class T>
void group_moments(const TensorDesc& xt, int64_t sample, int64_t first, int64_t per_group, double* mean, double* squares, double* count) {
    double sum = 0, n = 0;
    for (int64_t ch = first; ch < first + per_group; ++ch) {
        const TensorDesc x = channel_plane(xt, sample, ch);
        StridedSpace<1>({&x}).for_range(0, x.numel(), [&](int64_t len, const std::array<char*, 1>& p, const std::array<int64_t, 1>& s) {
            const T* v = reinterpret_cast<const T*>(p[0]);
            for (int64_t i = 0; i < len; ++i) sum += to_float(v[i * s[0]]);
        });
        n += double(x.numel());
    }
    const double m = n > 0 ? sum / n : 0.0;
    double sq = 0;
    for (int64_t ch = first; ch < first + per_group; ++ch) {
        const TensorDesc x = channel_plane(xt, sample, ch);
        StridedSpace<1>({&x}).for_range(0, x.numel(), [&](int64_t len, const std::array<char*, 1>& p, const std::array<int64_t, 1>& s) {
            const T* v = reinterpret_cast<const T*>(p[0]);
            for (int64_t i = 0; i < len; ++i) {
                const double d = to_float(v[i * s[0]]) - m;
                sq += d * d;
            }
        });
    }
    *mean = m;
    *squares = sq;
    *count = n;
}

// Element (sample, group, k) of an f32 [N, G, 2] statistics tensor.
float& stat(const TensorDesc& stats, int64_t sample, int64_t group, int k) {
    return *reinterpret_cast<float*>(static_cast<char*>(stats.data) +
                                     (sample * stats.strides[0] + group * stats.strides[1] + k * stats.strides[2]) * int64_t(sizeof(float)));
}

}  // namespace

void CpuBackend::group_norm(const NormArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const std::vector<float> weight = widen<T>(a.weight), bias = widen<T>(a.bias);
        const int64_t n = a.x.shape[0], channels = a.x.shape[1], per_group = channels / a.groups;
        pool_.parallel_for(n * a.groups, 1, [&](int64_t g0, int64_t g1) {
            for (int64_t task = g0; task < g1; ++task) {
                const int64_t sample = task / a.groups, group = task % a.groups, first = group * per_group;
                double mean, inv;
                if (a.stats) {
                    mean = stat(*a.stats, sample, group, 0);
                    inv = stat(*a.stats, sample, group, 1);
                } else {
                    double squares, count;
                    group_moments<T>(a.x, sample, first, per_group, &mean, &squares, &count);
                    inv = 1.0 / std::sqrt(squares / count + a.eps);
                }
                for (int64_t ch = first; ch < first + per_group; ++ch) {
                    const double w = weight.empty() ? 1.0 : weight[size_t(ch)];
                    const double b = bias.empty() ? 0.0 : bias[size_t(ch)];
                    const TensorDesc x = channel_plane(a.x, sample, ch), out = channel_plane(a.out, sample, ch);
                    StridedSpace<2>({&x, &out}).for_range(0, x.numel(), [&](int64_t len, const std::array<char*, 2>& p, const std::array<int64_t, 2>& s) {
                        const T* v = reinterpret_cast<const T*>(p[0]);
                        T* o = reinterpret_cast<T*>(p[1]);
                        for (int64_t i = 0; i < len; ++i)
                            o[i * s[1]] = from_float<T>(static_cast<float>((to_float(v[i * s[0]]) - mean) * inv * w + b));
                    });
                }
            }
        });
    });
}

void CpuBackend::group_norm_stats(const NormArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t n = a.x.shape[0], per_group = a.x.shape[1] / a.groups;
        pool_.parallel_for(n * a.groups, 1, [&](int64_t g0, int64_t g1) {
            for (int64_t task = g0; task < g1; ++task) {
                const int64_t sample = task / a.groups, group = task % a.groups;
                double mean, squares, count;
                group_moments<T>(a.x, sample, group * per_group, per_group, &mean, &squares, &count);
                stat(*a.stats, sample, group, 0) = static_cast<float>(mean);
                stat(*a.stats, sample, group, 1) = static_cast<float>(squares);
            }
        });
    });
}

void CpuBackend::softmax(const TensorDesc& x, const TensorDesc& out) {
    dispatch_float_dtype(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const Rows<2> rows({&x, &out});
        const int64_t c = rows.length();
        pool_.parallel_for(rows.count(), std::max<int64_t>(1, 4096 / std::max<int64_t>(c, 1)), [&](int64_t r0, int64_t r1) {
            std::vector<float> e(static_cast<size_t>(c));
            for (int64_t r = r0; r < r1; ++r) {
                const T* in = rows.row<const T>(0, r);
                T* o = rows.row<T>(1, r);
                const int64_t si = rows.inner_stride(0), so = rows.inner_stride(1);
                float m = -std::numeric_limits<float>::infinity();
                for (int64_t i = 0; i < c; ++i) m = std::fmax(m, to_float(in[i * si]));
                double sum = 0;
                for (int64_t i = 0; i < c; ++i) {
                    e[size_t(i)] = std::exp(to_float(in[i * si]) - m);
                    sum += e[size_t(i)];
                }
                const double inv = 1.0 / sum;
                for (int64_t i = 0; i < c; ++i) o[i * so] = from_float<T>(static_cast<float>(e[size_t(i)] * inv));
            }
        });
    });
}

}  // namespace xdit::cpu
