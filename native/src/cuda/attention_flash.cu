// Attention on CUDA, the tensor-core path (FlashAttention-2's schedule): bf16/f16 storage, head dims
// 64, 72, 96 and 128 (q, k and v of one width), Sq ≠ Sk, optional key-padding mask, fp32 LSE. A block of
// four warps takes 64 queries of one (batch, head); each warp keeps its 16 queries' Q fragments and
// output accumulators in registers and walks the keys in tiles of 64 staged in shared memory: S = Q·Kᵀ
// and O += P·V on mma.sync m16n8k16 with fp32 accumulation, an online softmax in between (exp2 with the
// scale folded in), P rounded to the storage dtype as FlashAttention-2 does. The score fragment of two
// adjacent 8-key tiles is exactly the A fragment of a 16-key step, so P never leaves registers. V is
// staged transposed, so that both products read 32-bit pairs from shared memory without bank conflicts.
// Single-buffered (no cp.async pipeline yet). Everything else (f32, other head dims, a bias, unaligned
// views) takes the generic path in attention.cu.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

constexpr int kWarps = 4;
constexpr int kQueriesPerWarp = 16;
constexpr int kBlockQueries = kWarps * kQueriesPerWarp;
constexpr int kKeyTile = 64;
constexpr int kVtStride = kKeyTile + 8;  // elements per transposed-V row: 36 words, conflict-free pair reads
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// The m16n8k16 product with fp32 accumulation, d += a·b. Fragments (g = lane / 4, t = lane % 4):
// a = {A[g][2t..2t+1], A[g+8][2t..], A[g][2t+8..], A[g+8][2t+8..]}, b = {B[2t..2t+1][g], B[2t+8..][g]},
// d = {D[g][2t], D[g][2t+1], D[g+8][2t], D[g+8][2t+1]}; two 16-bit elements per register, the lower
// index in the lower half.
template <class T>
__device__ inline void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    if constexpr (std::is_same_v<T, __nv_bfloat16>)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as one register of two storage elements (lo in the lower half).
template <class T>
__device__ inline uint32_t pack(float lo, float hi) {
    uint32_t bits;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
        memcpy(&bits, &pair, 4);
    } else {
        const __half2 pair = __floats2half2_rn(lo, hi);
        memcpy(&bits, &pair, 4);
    }
    return bits;
}

__device__ inline uint32_t pair_at(const void* p) { return *static_cast<const uint32_t*>(p); }

template <class T>
struct FlashParams {
    const T* q;
    const T* k;
    const T* v;
    T* out;
    const bool* mask;  // null when absent
    float* lse;        // null when absent
    int64_t q_strides[3], k_strides[3], v_strides[3], out_strides[3], mask_strides[2], lse_strides[3];
    int64_t sq, sk, heads;
    float scale_log2;  // softmax scale × log2(e): scores live in the exp2 domain
};

// kD: the head dimension; kDSteps: 16-wide steps of Q·Kᵀ (the last one zero-padded for 72).
template <class T, int kD>
__global__ void __launch_bounds__(kWarps * 32) flash_kernel(FlashParams<T> p) {
    constexpr int kDSteps = (kD + 15) / 16;
    constexpr int kKStride = kDSteps * 16 + 8;  // elements per staged K row: conflict-free pair reads
    constexpr int kDTiles = kD / 8;             // 8-wide output tiles
    constexpr int kChunks = kD / 8;             // 16-byte chunks per row of K or V
    __shared__ __align__(16) T ks[kKeyTile * kKStride];
    __shared__ __align__(16) T vt[kD * kVtStride];
    __shared__ float key_bias[kKeyTile];  // 0, or −inf for a masked or missing key

    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int64_t h = blockIdx.y % p.heads, b = blockIdx.y / p.heads;
    const int64_t q0 = int64_t(blockIdx.x) * kBlockQueries + warp * kQueriesPerWarp;

    // The padding columns of K (72 → 80) stay zero for the whole kernel.
    if constexpr (kDSteps * 16 != kD) {
        for (int i = threadIdx.x; i < kKeyTile * (kDSteps * 16 - kD); i += blockDim.x) {
            const int row = i / (kDSteps * 16 - kD), col = kD + i % (kDSteps * 16 - kD);
            ks[row * kKStride + col] = store_float<T>(0.0f);
        }
    }

    // This warp's Q fragments, for rows q0 + g and q0 + g + 8.
    uint32_t qf[kDSteps][4];
    {
        const T* base = p.q + b * p.q_strides[0] + h * p.q_strides[2];
        const int64_t rows[2] = {q0 + g, q0 + g + 8};
        for (int s = 0; s < kDSteps; ++s)
            for (int r = 0; r < 2; ++r)
                for (int half = 0; half < 2; ++half) {
                    const int col = s * 16 + half * 8 + 2 * t;
                    qf[s][half * 2 + r] = rows[r] < p.sq && col < kD ? pair_at(base + rows[r] * p.q_strides[1] + col) : 0u;
                }
    }

    float acc[kDTiles][4] = {};
    float row_max[2] = {-INFINITY, -INFINITY};
    float row_sum[2] = {0.0f, 0.0f};  // this thread's part; the four threads of a row add theirs at the end

    const T* k_base = p.k + b * p.k_strides[0] + h * p.k_strides[2];
    const T* v_base = p.v + b * p.v_strides[0] + h * p.v_strides[2];
    // A key outside the sequence or masked out is never read: its K and V stay zero (so a NaN in padding
    // cannot reach the sums) and its score becomes −inf.
    auto key_valid = [&](int64_t key) {
        return key < p.sk && (p.mask == nullptr || p.mask[b * p.mask_strides[0] + key * p.mask_strides[1]]);
    };
    for (int64_t key0 = 0; key0 < p.sk; key0 += kKeyTile) {
        __syncthreads();  // the previous tile is no longer read
        for (int c = threadIdx.x; c < kKeyTile * kChunks; c += blockDim.x) {
            const int row = c / kChunks, col = (c % kChunks) * 8;
            const int64_t key = key0 + row;
            uint4 kc = make_uint4(0, 0, 0, 0), vc = make_uint4(0, 0, 0, 0);
            if (key_valid(key)) {
                kc = *reinterpret_cast<const uint4*>(k_base + key * p.k_strides[1] + col);
                vc = *reinterpret_cast<const uint4*>(v_base + key * p.v_strides[1] + col);
            }
            *reinterpret_cast<uint4*>(ks + row * kKStride + col) = kc;
            const T* values = reinterpret_cast<const T*>(&vc);
            for (int i = 0; i < 8; ++i) vt[(col + i) * kVtStride + row] = values[i];
        }
        for (int row = threadIdx.x; row < kKeyTile; row += blockDim.x) key_bias[row] = key_valid(key0 + row) ? 0.0f : -INFINITY;
        __syncthreads();

        // S = Q·Kᵀ for this warp's 16 queries and the tile's 64 keys (eight 8-key tiles).
        float s[kKeyTile / 8][4] = {};
        for (int j = 0; j < kKeyTile / 8; ++j)
            for (int step = 0; step < kDSteps; ++step) {
                const T* row = ks + (j * 8 + g) * kKStride + step * 16 + 2 * t;
                mma<T>(s[j], qf[step], pair_at(row), pair_at(row + 8));
            }

        // The online softmax, rows g (elements 0, 1) and g + 8 (elements 2, 3) of each tile.
        float tile_max[2] = {-INFINITY, -INFINITY};
        for (int j = 0; j < kKeyTile / 8; ++j)
            for (int e = 0; e < 4; ++e) {
                s[j][e] = s[j][e] * p.scale_log2 + key_bias[j * 8 + 2 * t + (e & 1)];
                tile_max[e / 2] = fmaxf(tile_max[e / 2], s[j][e]);
            }
        float correction[2];
        for (int r = 0; r < 2; ++r) {
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 1));
            tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(0xffffffffu, tile_max[r], 2));
            const float updated = fmaxf(row_max[r], tile_max[r]);
            // Before the first unmasked key both are −inf: nothing to rescale, and every weight is 0.
            correction[r] = updated == -INFINITY ? 1.0f : exp2f(row_max[r] - updated);
            row_max[r] = updated;
            row_sum[r] *= correction[r];
        }
        for (int j = 0; j < kKeyTile / 8; ++j)
            for (int e = 0; e < 4; ++e) {
                const float m = row_max[e / 2];
                s[j][e] = m == -INFINITY ? 0.0f : exp2f(s[j][e] - m);
                row_sum[e / 2] += s[j][e];
            }
        for (int n = 0; n < kDTiles; ++n)
            for (int e = 0; e < 4; ++e) acc[n][e] *= correction[e / 2];

        // O += P·V, 16 keys per step: the score fragments of tiles 2k and 2k+1 are that step's A fragment.
        for (int step = 0; step < kKeyTile / 16; ++step) {
            const uint32_t pf[4] = {pack<T>(s[2 * step][0], s[2 * step][1]), pack<T>(s[2 * step][2], s[2 * step][3]),
                                    pack<T>(s[2 * step + 1][0], s[2 * step + 1][1]), pack<T>(s[2 * step + 1][2], s[2 * step + 1][3])};
            for (int n = 0; n < kDTiles; ++n) {
                const T* row = vt + (n * 8 + g) * kVtStride + step * 16 + 2 * t;
                mma<T>(acc[n], pf, pair_at(row), pair_at(row + 8));
            }
        }
    }

    // Normalise and store; a query that saw no unmasked key gets zeros and an LSE of −inf.
    for (int r = 0; r < 2; ++r) {
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 1);
        row_sum[r] += __shfl_xor_sync(0xffffffffu, row_sum[r], 2);
    }
    for (int r = 0; r < 2; ++r) {
        const int64_t query = q0 + g + 8 * r;
        if (query >= p.sq) continue;
        const float inv = row_sum[r] > 0.0f ? 1.0f / row_sum[r] : 0.0f;
        T* out = p.out + b * p.out_strides[0] + query * p.out_strides[1] + h * p.out_strides[2];
        for (int n = 0; n < kDTiles; ++n)
            *reinterpret_cast<uint32_t*>(out + n * 8 + 2 * t) = pack<T>(acc[n][2 * r] * inv, acc[n][2 * r + 1] * inv);
        if (p.lse != nullptr && t == 0)
            p.lse[b * p.lse_strides[0] + h * p.lse_strides[1] + query * p.lse_strides[2]] =
                row_sum[r] > 0.0f ? (row_max[r] + log2f(row_sum[r])) * kLn2 : -INFINITY;
    }
}

// Unit last stride, and rows and pairs aligned for 16-byte loads and 32-bit stores.
bool aligned_rows(const TensorDesc& t, int64_t bytes_multiple) {
    if (t.strides[3] != 1) return false;
    const auto element = static_cast<int64_t>(t.element_size());
    for (int d = 0; d < 3; ++d)
        if ((t.strides[d] * element) % bytes_multiple != 0 && t.shape[d] > 1) return false;
    return reinterpret_cast<uintptr_t>(t.data) % bytes_multiple == 0;
}

template <class T, int kD>
void launch(const AttentionArgs& a, cudaStream_t stream) {
    FlashParams<T> p{};
    p.q = static_cast<const T*>(a.q.data);
    p.k = static_cast<const T*>(a.k.data);
    p.v = static_cast<const T*>(a.v.data);
    p.out = static_cast<T*>(a.out.data);
    for (int d = 0; d < 3; ++d) {
        p.q_strides[d] = a.q.strides[d];
        p.k_strides[d] = a.k.strides[d];
        p.v_strides[d] = a.v.strides[d];
        p.out_strides[d] = a.out.strides[d];
    }
    if (a.key_mask) {
        p.mask = static_cast<const bool*>(a.key_mask->data);
        p.mask_strides[0] = a.key_mask->strides[0];
        p.mask_strides[1] = a.key_mask->strides[1];
    }
    if (a.lse) {
        p.lse = static_cast<float*>(a.lse->data);
        for (int d = 0; d < 3; ++d) p.lse_strides[d] = a.lse->strides[d];
    }
    p.sq = a.q.shape[1];
    p.heads = a.q.shape[2];
    p.sk = a.k.shape[1];
    p.scale_log2 = a.scale * kLog2e;
    const dim3 grid(static_cast<unsigned>((p.sq + kBlockQueries - 1) / kBlockQueries), static_cast<unsigned>(a.q.shape[0] * p.heads));
    flash_kernel<T, kD><<<grid, kWarps * 32, 0, stream>>>(p);
    check_launch("flash attention kernel");
}

template <class T>
bool launch_for_width(const AttentionArgs& a, cudaStream_t stream) {
    switch (a.q.shape[3]) {
        case 64: launch<T, 64>(a, stream); return true;
        case 72: launch<T, 72>(a, stream); return true;
        case 96: launch<T, 96>(a, stream); return true;
        case 128: launch<T, 128>(a, stream); return true;
        default: return false;
    }
}

}  // namespace

bool launch_flash_attention(const AttentionArgs& a, cudaStream_t stream) {
    const bool half = a.q.dtype == XDIT_DTYPE_BF16 || a.q.dtype == XDIT_DTYPE_F16;
    if (!half || a.bias || a.v.shape[3] != a.q.shape[3] || a.k.shape[1] == 0 || a.q.shape[0] * a.q.shape[1] * a.q.shape[2] == 0)
        return false;
    if (!aligned_rows(a.q, 4) || !aligned_rows(a.out, 4) || !aligned_rows(a.k, 16) || !aligned_rows(a.v, 16)) return false;
    if (a.q.shape[0] * a.q.shape[2] > 65535) return false;  // one block row per (batch, head): the grid's y limit
    if (a.q.dtype == XDIT_DTYPE_BF16) return launch_for_width<__nv_bfloat16>(a, stream);
    return launch_for_width<__half>(a, stream);
}

}  // namespace xdit::cuda
