// The exponential of attention's online softmax, in plain C++ (attention_tiles_avx2.cpp has the
// same function on eight lanes).
#pragma once

#include <cstdint>

namespace xdit::cpu {

// exp(x) for x <= 0 by range reduction x = n·ln2 + r, |r| <= ln2/2, and a degree-7 Taylor
// polynomial (truncation error < 2e-8 relative, about 2 ulp in all); 0 below −87, which covers −inf.
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

}  // namespace xdit::cpu
