#include "vector_math.h"

#include <limits>

namespace xdit::cpu {

namespace {

// exp(x) for x <= 0 by range reduction x = n·ln2 + r, |r| <= ln2/2, and a degree-7 Taylor
// polynomial (truncation error < 2e-8 relative); branch-free so that loops vectorise.
inline float exp_nonpositive(float x) {
    const float clamped = x < -87.0f ? -87.0f : x;
    const float t = clamped * 1.4426950408889634f;
    const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest through the 1.5·2^23 trick
    const float r = clamped - n * 0.693145751953125f - n * 1.428606820309417232e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const float scale = __builtin_bit_cast(float, (static_cast<int32_t>(n) + 127) << 23);
    return x < -87.0f ? 0.0f : p * scale;
}

constexpr int kLanes = 8;

}  // namespace

__attribute__((target_clones("arch=haswell", "default")))
float row_max(const float* x, int64_t n) {
    float lane[kLanes];
    for (int j = 0; j < kLanes; ++j) lane[j] = -std::numeric_limits<float>::infinity();
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) lane[j] = x[i + j] > lane[j] ? x[i + j] : lane[j];
    float m = -std::numeric_limits<float>::infinity();
    for (int j = 0; j < kLanes; ++j) m = lane[j] > m ? lane[j] : m;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

__attribute__((target_clones("arch=haswell", "default")))
float exp_shifted_sum(float* x, int64_t n, float shift) {
    float lane[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int j = 0; j < kLanes; ++j) {
            const float e = exp_nonpositive(x[i + j] - shift);
            x[i + j] = e;
            lane[j] += e;
        }
    float sum = 0;
    for (; i < n; ++i) {
        x[i] = exp_nonpositive(x[i] - shift);
        sum += x[i];
    }
    for (int j = 0; j < kLanes; ++j) sum += lane[j];
    return sum;
}

__attribute__((target_clones("arch=haswell", "default")))
void scale_row(float* y, int64_t n, float a) {
    for (int64_t i = 0; i < n; ++i) y[i] *= a;
}

}  // namespace xdit::cpu
