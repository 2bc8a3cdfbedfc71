// Scaled dot-product attention on the CPU, blocked as flash attention is: a block of queries walks
// over blocks of keys with an online softmax (running max m, running sum l, rescaled accumulator),
// so memory per thread is O(block·D) and never O(Sq·Sk). The block's queries are held transposed so
// that the two products read K and V in place (attention_tiles.h); the context's threads take
// (batch, head, query block) tasks. Also the fp32 merge of two partial attentions (the ring's step).
#include <cmath>
#include <limits>

#include "attention_tiles.h"
#include "core/allocator.h"
#include "cpu_backend.h"
#include "element.h"

namespace xdit::cpu {

namespace {

constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();

template <class T>
const T* at(const TensorDesc& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3 = 0) {
    return static_cast<const T*>(t.data) + i0 * t.strides[0] + i1 * t.strides[1] + i2 * t.strides[2] + i3 * t.strides[3];
}

// Per-thread scratch, in floats.
struct Workspace {
    float* qt;         // [D][kQueryBlock], pre-scaled, padded columns zero
    float* acc;        // [Dv][kQueryBlock]
    float* st;         // [kKeyBlock][kQueryBlock] scores, then probabilities
    float* k;          // [kKeyBlock][D] when K must be widened to f32 rows
    float* v;          // [kKeyBlock][Dv] when V must be widened
    float* m;          // [kQueryBlock] running max
    float* l;          // [kQueryBlock] running sum
    float* col_max;    // [kQueryBlock] this key block's column maxima
    float* correction; // [kQueryBlock] exp(m_old − m_new)

    static int64_t floats(int64_t d, int64_t dv) {
        return kQueryBlock * (d + dv + kKeyBlock + 4) + kKeyBlock * (d + dv);
    }

    Workspace(float* base, int64_t d, int64_t dv) {
        qt = base;
        acc = qt + kQueryBlock * d;
        st = acc + kQueryBlock * dv;
        k = st + kQueryBlock * kKeyBlock;
        v = k + kKeyBlock * d;
        m = v + kKeyBlock * dv;
        l = m + kQueryBlock;
        col_max = l + kQueryBlock;
        correction = col_max + kQueryBlock;
    }
};

// Rows of K or V for one key block: in place when they are f32 (the API requires a unit inner
// stride), else widened into scratch.
template <class T>
const float* key_rows(const TensorDesc& t, int64_t b, int64_t h, int64_t k0, int64_t count, float* scratch,
                      int64_t& ld) {
    if constexpr (std::is_same_v<T, float>) {
        ld = t.strides[1];
        return at<float>(t, b, k0, h);
    }
    const int64_t width = t.shape[3];
    for (int64_t j = 0; j < count; ++j) {
        const T* row = at<T>(t, b, k0 + j, h);
        for (int64_t c = 0; c < width; ++c) scratch[j * width + c] = to_float(row[c]);
    }
    ld = width;
    return scratch;
}

// V rows for one key block with the rows of masked keys as zeros: their probability is 0, but 0 · NaN
// is NaN, and padding (a sequence-parallel shard's) may hold anything. Blocks without a masked key keep
// their rows where they are.
const float* unmasked_value_rows(const AttentionArgs& a, int64_t b, int64_t k0, int64_t count, const float* rows, int64_t& ld,
                                 float* scratch) {
    const bool* keep = static_cast<const bool*>(a.key_mask->data) + b * a.key_mask->strides[0];
    auto kept = [&](int64_t j) { return keep[(k0 + j) * a.key_mask->strides[1]]; };
    int64_t j = 0;
    while (j < count && kept(j)) ++j;
    if (j == count) return rows;
    const int64_t width = a.v.shape[3];
    for (j = 0; j < count; ++j) {
        float* row = scratch + j * width;
        if (!kept(j))
            std::fill(row, row + width, 0.0f);
        else if (rows != scratch)
            std::copy(rows + j * ld, rows + j * ld + width, row);
    }
    ld = width;
    return scratch;
}

template <class T>
void attend_block(const AttentionTiles& tiles, const AttentionArgs& a, Workspace& w, int64_t b, int64_t h, int64_t q0,
                  int64_t bq) {
    const int64_t d = a.q.shape[3], dv = a.v.shape[3], sk = a.k.shape[1];
    const int64_t width = (bq + kQueryTile - 1) / kQueryTile * kQueryTile;
    for (int64_t i = 0; i < width; ++i) {
        const T* row = i < bq ? at<T>(a.q, b, q0 + i, h) : nullptr;
        for (int64_t c = 0; c < d; ++c) w.qt[c * kQueryBlock + i] = row ? to_float(row[c]) * a.scale : 0.0f;
    }
    for (int64_t c = 0; c < dv; ++c) std::fill(w.acc + c * kQueryBlock, w.acc + c * kQueryBlock + width, 0.0f);
    std::fill(w.m, w.m + width, kNegativeInfinity);
    std::fill(w.l, w.l + width, 0.0f);

    for (int64_t k0 = 0; k0 < sk; k0 += kKeyBlock) {
        const int64_t bk = std::min(kKeyBlock, sk - k0);
        int64_t ldk = 0, ldv = 0;
        const float* kb = key_rows<T>(a.k, b, h, k0, bk, w.k, ldk);
        const float* vb = key_rows<T>(a.v, b, h, k0, bk, w.v, ldv);
        if (a.key_mask) vb = unmasked_value_rows(a, b, k0, bk, vb, ldv, w.v);

        std::fill(w.col_max, w.col_max + width, kNegativeInfinity);
        tiles.scores(kb, ldk, bk, w.qt, d, width, w.st, w.col_max);
        if (a.bias || a.key_mask) {
            if (a.bias) {
                dispatch_float_dtype(a.bias->dtype, [&](auto tag) {
                    using B = decltype(tag);
                    for (int64_t i = 0; i < bq; ++i) {
                        const B* bias = at<B>(*a.bias, b, h, q0 + i, k0);
                        for (int64_t j = 0; j < bk; ++j) w.st[j * kQueryBlock + i] += to_float(bias[j * a.bias->strides[3]]);
                    }
                });
            }
            if (a.key_mask) {
                const bool* keep = static_cast<const bool*>(a.key_mask->data) + b * a.key_mask->strides[0];
                for (int64_t j = 0; j < bk; ++j)
                    if (!keep[(k0 + j) * a.key_mask->strides[1]])
                        std::fill(w.st + j * kQueryBlock, w.st + j * kQueryBlock + width, kNegativeInfinity);
            }
            // The maxima the score tiles folded in predate the bias and the mask.
            std::fill(w.col_max, w.col_max + width, kNegativeInfinity);
            tiles.column_max(w.st, bk, width, w.col_max);
        }
        tiles.softmax(w.st, bk, width, w.col_max, w.m, w.l, w.correction);
        tiles.values(vb, ldv, bk, dv, w.st, width, w.correction, w.acc);
    }

    for (int64_t i = 0; i < bq; ++i) {
        T* out = const_cast<T*>(at<T>(a.out, b, q0 + i, h));
        const float inv = w.l[i] > 0.0f ? 1.0f / w.l[i] : 0.0f;
        for (int64_t c = 0; c < dv; ++c) out[c] = from_float<T>(w.acc[c * kQueryBlock + i] * inv);
        if (a.lse) {
            float* lse = const_cast<float*>(at<float>(*a.lse, b, h, q0 + i, 0));
            *lse = w.l[i] > 0.0f ? w.m[i] + std::log(w.l[i]) : kNegativeInfinity;
        }
    }
}

}  // namespace

void CpuBackend::attention(const AttentionArgs& a) {
    dispatch_float_dtype(a.q.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t batch = a.q.shape[0], sq = a.q.shape[1], heads = a.q.shape[2];
        const int64_t d = a.q.shape[3], dv = a.v.shape[3];
        const int64_t blocks = (sq + kQueryBlock - 1) / kQueryBlock;
        const int64_t tasks = batch * heads * blocks;
        const int slots = static_cast<int>(std::min<int64_t>(pool_.size(), tasks));
        const int64_t per_slot = Workspace::floats(d, dv);
        ScratchBlock scratch(allocator(), size_t(per_slot) * size_t(slots) * sizeof(float));
        // One contiguous range of tasks per slot, so that each thread owns one workspace.
        pool_.parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
            for (int64_t slot = s0; slot < s1; ++slot) {
                Workspace w(scratch.as<float>() + slot * per_slot, d, dv);
                const int64_t first = tasks * slot / slots, last = tasks * (slot + 1) / slots;
                for (int64_t task = first; task < last; ++task) {
                    const int64_t block = task % blocks, h = (task / blocks) % heads, b = task / (blocks * heads);
                    const int64_t q0 = block * kQueryBlock;
                    attend_block<T>(*attention_tiles_, a, w, b, h, q0, std::min(kQueryBlock, sq - q0));
                }
            }
        });
    });
}

void CpuBackend::attention_merge(const MergeArgs& a) {
    dispatch_float_dtype(a.out.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t batch = a.out.shape[0], s = a.out.shape[1], heads = a.out.shape[2], d = a.out.shape[3];
        pool_.parallel_for(batch * s * heads, 256, [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
                const int64_t h = r % heads, i = (r / heads) % s, b = r / (heads * s);
                const float la = *at<float>(a.lse_a, b, h, i, 0);
                const float lb = *at<float>(a.lse_b, b, h, i, 0);
                const float m = std::fmax(la, lb);
                const T* oa = at<T>(a.out_a, b, i, h);
                const T* ob = at<T>(a.out_b, b, i, h);
                T* out = const_cast<T*>(at<T>(a.out, b, i, h));
                float* lse = const_cast<float*>(at<float>(a.lse, b, h, i, 0));
                if (m == kNegativeInfinity) {  // neither part saw an unmasked key
                    for (int64_t c = 0; c < d; ++c) out[c * a.out.strides[3]] = from_float<T>(0.0f);
                    *lse = kNegativeInfinity;
                    continue;
                }
                const float wa = std::exp(la - m), wb = std::exp(lb - m), total = wa + wb;
                for (int64_t c = 0; c < d; ++c) {
                    const float x = to_float(oa[c * a.out_a.strides[3]]), y = to_float(ob[c * a.out_b.strides[3]]);
                    out[c * a.out.strides[3]] = from_float<T>((wa * x + wb * y) / total);
                }
                *lse = m + std::log(total);
            }
        });
    });
}

}  // namespace xdit::cpu
