// Element types: sizes, names, and the exact f32 <-> f16/bf16 conversions (round to nearest even)
// shared by every CPU kernel.
#pragma once

#include <cstdint>
#include <cstring>

#include "xdit/xdit.h"

namespace xdit {

inline bool dtype_valid(int32_t dtype) { return dtype >= XDIT_DTYPE_F32 && dtype <= XDIT_DTYPE_BOOL; }

inline size_t dtype_size(int32_t dtype) {
    switch (dtype) {
        case XDIT_DTYPE_F32: return 4;
        case XDIT_DTYPE_F16: return 2;
        case XDIT_DTYPE_BF16: return 2;
        case XDIT_DTYPE_I32: return 4;
        case XDIT_DTYPE_I64: return 8;
        case XDIT_DTYPE_BOOL: return 1;
        default: return 0;
    }
}

inline const char* dtype_name(int32_t dtype) {
    switch (dtype) {
        case XDIT_DTYPE_F32: return "f32";
        case XDIT_DTYPE_F16: return "f16";
        case XDIT_DTYPE_BF16: return "bf16";
        case XDIT_DTYPE_I32: return "i32";
        case XDIT_DTYPE_I64: return "i64";
        case XDIT_DTYPE_BOOL: return "bool";
        default: return "invalid";
    }
}

inline bool dtype_is_float(int32_t dtype) {
    return dtype == XDIT_DTYPE_F32 || dtype == XDIT_DTYPE_F16 || dtype == XDIT_DTYPE_BF16;
}

inline uint32_t f32_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

inline float f32_from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

inline float bf16_to_f32(uint16_t h) { return f32_from_bits(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
    return static_cast<uint16_t>(u >> 16);
}

inline float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
    if (exponent != 0) return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    if (mantissa == 0) return f32_from_bits(sign);
    // Subnormal half: value = mantissa · 2^-24, exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
    return sign ? -magnitude : magnitude;
}

inline uint16_t f32_to_f16(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((abs >> 13) & 0x3ffu));  // NaN
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (abs >= 0x38800000u) {  // normal half (>= 2^-14)
        uint32_t v = abs - (112u << 23);  // rebias exponent
        v += 0xfffu + ((v >> 13) & 1u);   // round to nearest even on the 13 dropped bits
        return static_cast<uint16_t>(sign | (v >> 13));
    }
    if (abs < 0x33000000u) return sign;  // below half the smallest subnormal (2^-25): zero
    // Subnormal half: shift the full mantissa right, rounding to nearest even.
    const uint32_t exponent = abs >> 23;
    const uint32_t mantissa = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - exponent;  // 14..24 for exponents 112..102
    const uint32_t kept = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    const uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
    return static_cast<uint16_t>(sign | rounded);
}

}  // namespace xdit
