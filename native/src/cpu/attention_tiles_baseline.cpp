// Attention's inner loops in plain C++ for any x86-64 processor (see attention_tiles.h): the same
// layout and order of work as the AVX2 tiles, without their register blocking.
#include <algorithm>
#include <limits>

#include "attention_tiles.h"
#include "fast_exp.h"

namespace xdit::cpu {

namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

void scores(const float* k, int64_t ldk, int64_t keys, const float* qt, int64_t d, int64_t width, float* st,
            float* col_max) {
    for (int64_t j = 0; j < keys; ++j) {
        float* row = st + j * kQueryBlock;
        std::fill(row, row + width, 0.0f);
        for (int64_t c = 0; c < d; ++c) {
            const float key = k[j * ldk + c];
            const float* q = qt + c * kQueryBlock;
            for (int64_t i = 0; i < width; ++i) row[i] += key * q[i];
        }
        for (int64_t i = 0; i < width; ++i) col_max[i] = std::max(col_max[i], row[i]);
    }
}

void column_max(const float* st, int64_t keys, int64_t width, float* col_max) {
    for (int64_t j = 0; j < keys; ++j)
        for (int64_t i = 0; i < width; ++i) col_max[i] = std::max(col_max[i], st[j * kQueryBlock + i]);
}

void softmax(float* st, int64_t keys, int64_t width, const float* col_max, float* m, float* l, float* correction) {
    for (int64_t i = 0; i < width; ++i) {
        const float m_new = std::max(m[i], col_max[i]);
        if (m_new == kNegativeInfinity) {  // no finite score in this column yet: nothing to add
            for (int64_t j = 0; j < keys; ++j) st[j * kQueryBlock + i] = 0.0f;
            correction[i] = 0.0f;
            continue;
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < keys; ++j) {
            float& s = st[j * kQueryBlock + i];
            s = exp_nonpositive(s - m_new);
            sum += s;
        }
        correction[i] = exp_nonpositive(m[i] - m_new);  // 0 on the column's first finite block
        l[i] = l[i] * correction[i] + sum;
        m[i] = m_new;
    }
}

void values(const float* v, int64_t ldv, int64_t keys, int64_t dv, const float* st, int64_t width,
            const float* correction, float* acc) {
    float block[kQueryBlock];  // this key block's sums, added to the rescaled accumulator at the end
    for (int64_t c = 0; c < dv; ++c) {
        std::fill(block, block + width, 0.0f);
        for (int64_t j = 0; j < keys; ++j) {
            const float value = v[j * ldv + c];
            const float* p = st + j * kQueryBlock;
            for (int64_t i = 0; i < width; ++i) block[i] += value * p[i];
        }
        float* out = acc + c * kQueryBlock;
        for (int64_t i = 0; i < width; ++i) out[i] = out[i] * correction[i] + block[i];
    }
}

}  // namespace

const AttentionTiles& baseline_attention_tiles() {
    static const AttentionTiles tiles{scores, column_max, softmax, values};
    return tiles;
}

}  // namespace xdit::cpu
