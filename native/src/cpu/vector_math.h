// Row primitives of softmax-style kernels, compiled for AVX2+FMA and baseline x86-64 and picked at
// load time. They are the hot loops of attention besides its two GEMMs.
#pragma once

#include <cstdint>

namespace xdit::cpu {

// max of x[0..n), −inf for n = 0.
float row_max(const float* x, int64_t n);

// x[i] = exp(x[i] − shift) in place (0 where x[i] − shift < −87, which covers −inf); returns Σ x[i].
// shift must not be −inf. Accurate to about 2 ulp.
float exp_shifted_sum(float* x, int64_t n, float shift);

// y[i] = y[i]·a for i < n.
void scale_row(float* y, int64_t n, float a);

}  // namespace xdit::cpu
