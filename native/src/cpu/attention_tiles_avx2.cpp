// Attention's inner loops with AVX2 + FMA intrinsics (see attention_tiles.h for the layout). Compiled
// for that target function by function, so the library itself still loads on any x86-64 processor;
// cpu_has_avx2_fma() decides at run time. Register tiles are 6 rows × 16 query lanes: 12 accumulators,
// two loads and one broadcast in flight, the shape of the classic Haswell GEMM micro-kernel.
#include <immintrin.h>

#include <cmath>

#include "attention_tiles.h"

#define XDIT_AVX2 __attribute__((target("avx2,fma")))
#define XDIT_AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) inline

namespace xdit::cpu {

namespace {

constexpr int kRows = 6;  // rows of a register tile (keys for the scores, output channels for the values)

// exp(x) for x ≤ 0, lane-wise, as exp_nonpositive in fast_exp.h: x = n·ln2 + r, a degree-7
// polynomial in r, 2^n from the exponent bits; lanes below −87 (−inf included) and NaN lanes give 0.
XDIT_AVX2_INLINE __m256 exp_nonpositive(__m256 x) {
    const __m256 lowest = _mm256_set1_ps(-87.0f);
    const __m256 clamped = _mm256_max_ps(x, lowest);  // NaN lanes take −87 here and 0 below
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.4426950408889634f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), clamped);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606820309417232e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(exponent)), _mm256_cmp_ps(x, lowest, _CMP_GE_OQ));
}

// R keys × 16 queries of st, and their column maxima folded into col_max.
template <int R>
XDIT_AVX2_INLINE void score_tile(const float* k, int64_t ldk, const float* qt, int64_t d, float* st, float* col_max) {
    __m256 lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; ++c) {
        const __m256 q0 = _mm256_loadu_ps(qt + c * kQueryBlock);
        const __m256 q1 = _mm256_loadu_ps(qt + c * kQueryBlock + 8);
        for (int r = 0; r < R; ++r) {
            const __m256 key = _mm256_broadcast_ss(k + r * ldk + c);
            lo[r] = _mm256_fmadd_ps(key, q0, lo[r]);
            hi[r] = _mm256_fmadd_ps(key, q1, hi[r]);
        }
    }
    __m256 max_lo = _mm256_loadu_ps(col_max), max_hi = _mm256_loadu_ps(col_max + 8);
    for (int r = 0; r < R; ++r) {
        _mm256_storeu_ps(st + r * kQueryBlock, lo[r]);
        _mm256_storeu_ps(st + r * kQueryBlock + 8, hi[r]);
        max_lo = _mm256_max_ps(max_lo, lo[r]);
        max_hi = _mm256_max_ps(max_hi, hi[r]);
    }
    _mm256_storeu_ps(col_max, max_lo);
    _mm256_storeu_ps(col_max + 8, max_hi);
}

template <int R>
XDIT_AVX2_INLINE void score_rows(const float* k, int64_t ldk, const float* qt, int64_t d, int64_t width, float* st,
                                 float* col_max) {
    for (int64_t i = 0; i < width; i += kQueryTile) score_tile<R>(k, ldk, qt + i, d, st + i, col_max + i);
}

XDIT_AVX2 void scores(const float* k, int64_t ldk, int64_t keys, const float* qt, int64_t d, int64_t width, float* st,
                      float* col_max) {
    int64_t j = 0;
    for (; j + kRows <= keys; j += kRows) score_rows<kRows>(k + j * ldk, ldk, qt, d, width, st + j * kQueryBlock, col_max);
    const float* kr = k + j * ldk;
    float* sr = st + j * kQueryBlock;
    switch (keys - j) {
        case 1: score_rows<1>(kr, ldk, qt, d, width, sr, col_max); break;
        case 2: score_rows<2>(kr, ldk, qt, d, width, sr, col_max); break;
        case 3: score_rows<3>(kr, ldk, qt, d, width, sr, col_max); break;
        case 4: score_rows<4>(kr, ldk, qt, d, width, sr, col_max); break;
        case 5: score_rows<5>(kr, ldk, qt, d, width, sr, col_max); break;
        default: break;
    }
}

XDIT_AVX2 void column_max(const float* st, int64_t keys, int64_t width, float* col_max) {
    for (int64_t i = 0; i < width; i += 8) {
        __m256 m = _mm256_loadu_ps(col_max + i);
        for (int64_t j = 0; j < keys; ++j) m = _mm256_max_ps(m, _mm256_loadu_ps(st + j * kQueryBlock + i));
        _mm256_storeu_ps(col_max + i, m);
    }
}

XDIT_AVX2 void softmax(float* st, int64_t keys, int64_t width, const float* col_max, float* m, float* l,
                       float* correction) {
    for (int64_t i = 0; i < width; i += 8) {
        const __m256 m_old = _mm256_loadu_ps(m + i);
        // A column with no finite score yet has m' = −inf: st − m' and m − m' are then NaN or −inf,
        // which exp_nonpositive turns into 0, so its probabilities and correction are 0 as required.
        const __m256 m_new = _mm256_max_ps(m_old, _mm256_loadu_ps(col_max + i));
        __m256 sum = _mm256_setzero_ps();
        for (int64_t j = 0; j < keys; ++j) {
            float* row = st + j * kQueryBlock + i;
            const __m256 p = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(row), m_new));
            _mm256_storeu_ps(row, p);
            sum = _mm256_add_ps(sum, p);
        }
        const __m256 c = exp_nonpositive(_mm256_sub_ps(m_old, m_new));
        _mm256_storeu_ps(correction + i, c);
        _mm256_storeu_ps(l + i, _mm256_fmadd_ps(_mm256_loadu_ps(l + i), c, sum));
        _mm256_storeu_ps(m + i, m_new);
    }
}

// R output channels × 16 queries of acc: the block's keys are summed from zero and then added to the
// rescaled accumulator, so that long sequences add up in blocks of kKeyBlock terms (fp32 error grows
// with the length of a running sum; 16k keys summed in one register lose a few more bits).
template <int R>
XDIT_AVX2_INLINE void value_tile(const float* v, int64_t ldv, int64_t keys, const float* st, const float* correction,
                                 float* acc) {
    __m256 lo[R], hi[R];
    for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm256_setzero_ps();
    for (int64_t j = 0; j < keys; ++j) {
        const __m256 p0 = _mm256_loadu_ps(st + j * kQueryBlock);
        const __m256 p1 = _mm256_loadu_ps(st + j * kQueryBlock + 8);
        for (int r = 0; r < R; ++r) {
            const __m256 value = _mm256_broadcast_ss(v + j * ldv + r);
            lo[r] = _mm256_fmadd_ps(value, p0, lo[r]);
            hi[r] = _mm256_fmadd_ps(value, p1, hi[r]);
        }
    }
    const __m256 c0 = _mm256_loadu_ps(correction), c1 = _mm256_loadu_ps(correction + 8);
    for (int r = 0; r < R; ++r) {
        float* row = acc + r * kQueryBlock;
        _mm256_storeu_ps(row, _mm256_fmadd_ps(_mm256_loadu_ps(row), c0, lo[r]));
        _mm256_storeu_ps(row + 8, _mm256_fmadd_ps(_mm256_loadu_ps(row + 8), c1, hi[r]));
    }
}

template <int R>
XDIT_AVX2_INLINE void value_rows(const float* v, int64_t ldv, int64_t keys, const float* st, int64_t width,
                                 const float* correction, float* acc) {
    for (int64_t i = 0; i < width; i += kQueryTile) value_tile<R>(v, ldv, keys, st + i, correction + i, acc + i);
}

XDIT_AVX2 void values(const float* v, int64_t ldv, int64_t keys, int64_t dv, const float* st, int64_t width,
                      const float* correction, float* acc) {
    int64_t c = 0;
    for (; c + kRows <= dv; c += kRows) value_rows<kRows>(v + c, ldv, keys, st, width, correction, acc + c * kQueryBlock);
    const float* vc = v + c;
    float* ac = acc + c * kQueryBlock;
    switch (dv - c) {
        case 1: value_rows<1>(vc, ldv, keys, st, width, correction, ac); break;
        case 2: value_rows<2>(vc, ldv, keys, st, width, correction, ac); break;
        case 3: value_rows<3>(vc, ldv, keys, st, width, correction, ac); break;
        case 4: value_rows<4>(vc, ldv, keys, st, width, correction, ac); break;
        case 5: value_rows<5>(vc, ldv, keys, st, width, correction, ac); break;
        default: break;
    }
}

}  // namespace

bool cpu_has_avx2_fma() {
    static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return has;
}

const AttentionTiles& avx2_attention_tiles() {
    static const AttentionTiles tiles{scores, column_max, softmax, values};
    return tiles;
}

}  // namespace xdit::cpu
