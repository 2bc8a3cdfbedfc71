// The inner loops of CPU attention, on one query block of one head, in a transposed layout that
// lets both products run from registers without packing K or V:
//   qt  [d][kQueryBlock]      the block's queries, pre-scaled, transposed (padded columns are zero)
//   st  [kKeyBlock][kQueryBlock]  scores Sᵀ = K·Qᵀ, then probabilities, for one key block
//   acc [dv][kQueryBlock]     the output accumulator, transposed
// Queries lie along the vector lanes, so per-query softmax statistics are lane-wise and K and V are
// read in place, one broadcast element at a time, from their [S, H, D] rows.
// Two implementations: AVX2 + FMA intrinsics, and plain C++ for any x86-64 processor.
#pragma once

#include <cstdint>

namespace xdit::cpu {

constexpr int64_t kQueryBlock = 64;  // queries per task: columns of qt, st and acc
constexpr int64_t kKeyBlock = 256;   // keys per online-softmax step: rows of st
constexpr int64_t kQueryTile = 16;   // query columns of one register tile; the used width is padded to it

struct AttentionTiles {
    // st[j][i] = Σ_c k[j·ldk + c] · qt[c][i] for keys j < keys, query columns i < width;
    // col_max[i] = max(col_max[i], max_j st[j][i]).
    void (*scores)(const float* k, int64_t ldk, int64_t keys, const float* qt, int64_t d, int64_t width, float* st,
                   float* col_max);
    // col_max[i] = max(col_max[i], max_j st[j][i]) over keys j < keys (after a bias or mask changed st).
    void (*column_max)(const float* st, int64_t keys, int64_t width, float* col_max);
    // The online-softmax step per query column i: m' = max(m, col_max), st = exp(st − m'),
    // correction[i] = exp(m − m'), l = l·correction + Σ_j st[j][i], m = m'. Columns whose scores are
    // all −inf so far get probabilities and correction 0.
    void (*softmax)(float* st, int64_t keys, int64_t width, const float* col_max, float* m, float* l,
                    float* correction);
    // acc[c][i] = acc[c][i]·correction[i] + Σ_j v[j·ldv + c] · st[j][i] for c < dv, j < keys (the block's
    // sum formed first, so that long sequences add up in blocks).
    void (*values)(const float* v, int64_t ldv, int64_t keys, int64_t dv, const float* st, int64_t width,
                   const float* correction, float* acc);
};

const AttentionTiles& baseline_attention_tiles();
const AttentionTiles& avx2_attention_tiles();  // call only where cpu_has_avx2_fma()

bool cpu_has_avx2_fma();

}  // namespace xdit::cpu
