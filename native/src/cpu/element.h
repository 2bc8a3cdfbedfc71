// Typed element access for CPU kernels: storage types for f16/bf16 and the conversions between
// every pair of dtypes, plus a dispatcher from xdit_dtype to a C++ type.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/error.h"

namespace xdit::cpu {

struct f16_t { uint16_t bits; };
struct bf16_t { uint16_t bits; };

// Everything converts through one of three carriers: float for the float types, int64 for the
// integer types, bool for bool.
template <class T> inline float to_float(T v) { return static_cast<float>(v); }
template <> inline float to_float(f16_t v) { return f16_to_f32(v.bits); }
template <> inline float to_float(bf16_t v) { return bf16_to_f32(v.bits); }
template <> inline float to_float(bool v) { return v ? 1.0f : 0.0f; }

template <class T> inline T from_float(float v) { return static_cast<T>(v); }
template <> inline f16_t from_float(float v) { return f16_t{f32_to_f16(v)}; }
template <> inline bf16_t from_float(float v) { return bf16_t{f32_to_bf16(v)}; }

template <class T> constexpr bool is_float_type = false;
template <> constexpr bool is_float_type<float> = true;
template <> constexpr bool is_float_type<f16_t> = true;
template <> constexpr bool is_float_type<bf16_t> = true;

// Converts one element. Float targets go through float (exact for f32 sources, round-to-nearest-even
// for narrowing); integer targets take integers only (api.cpp rejects float -> integer).
template <class S, class D>
inline D convert(S v) {
    if constexpr (std::is_same_v<S, D>) {
        return v;
    } else if constexpr (is_float_type<D>) {
        return from_float<D>(to_float(v));
    } else if constexpr (std::is_same_v<D, bool>) {
        if constexpr (is_float_type<S>) return to_float(v) != 0.0f;
        else return v != 0;
    } else if constexpr (is_float_type<S>) {
        return static_cast<D>(to_float(v));  // not reached: rejected before dispatch
    } else {
        return static_cast<D>(v);
    }
}

// Calls fn(T{}) with the C++ type of `dtype`.
template <class Fn>
inline void dispatch_dtype(int32_t dtype, Fn&& fn) {
    switch (dtype) {
        case XDIT_DTYPE_F32: fn(float{}); return;
        case XDIT_DTYPE_F16: fn(f16_t{}); return;
        case XDIT_DTYPE_BF16: fn(bf16_t{}); return;
        case XDIT_DTYPE_I32: fn(int32_t{}); return;
        case XDIT_DTYPE_I64: fn(int64_t{}); return;
        case XDIT_DTYPE_BOOL: fn(bool{}); return;
        default: invalid("unknown dtype " + std::to_string(dtype));
    }
}

template <class Fn>
inline void dispatch_float_dtype(int32_t dtype, Fn&& fn) {
    switch (dtype) {
        case XDIT_DTYPE_F32: fn(float{}); return;
        case XDIT_DTYPE_F16: fn(f16_t{}); return;
        case XDIT_DTYPE_BF16: fn(bf16_t{}); return;
        default: invalid(std::string("expected a float dtype, got ") + dtype_name(dtype));
    }
}

}  // namespace xdit::cpu
