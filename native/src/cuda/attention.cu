// Attention on CUDA, the generic path: any head dimension up to 512 (the tiny test models' 8–24, the
// VAE mid-block's one 512-wide head), Sq ≠ Sk, key-padding mask, additive bias, fp32 LSE. One warp per
// query row walks the keys with an online softmax; the lanes split the head dimension, so a score is a
// warp-wide sum. Memory stays O(D) per query. It is correct for every shape and slow for long
// sequences: bf16/f16 attention with head dims 64–128 takes the tensor-core path (attention_flash.cu).
// Also the fp32 merge of two partial attentions by their LSEs (the ring's step).
#include <algorithm>

#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kMaxHeadDim = 512;

// An operand's data (P: const T* or T*) and its strides in elements, for the 4-D [B, S, H, D] and
// [B, H, Sq, Sk] layouts and the 3-D [B, H, S] of the LSEs.
template <class P>
struct Ref {
    P data = nullptr;
    int64_t strides[4] = {};
};

template <class P>
Ref<P> ref(const TensorDesc& t) {
    Ref<P> r;
    r.data = static_cast<P>(t.data);
    for (int d = 0; d < t.rank && d < 4; ++d) r.strides[d] = t.strides[d];
    return r;
}

// A float of any storage dtype (the bias may have its own).
__device__ inline float load_any(const void* p, int32_t dtype, int64_t i) {
    switch (dtype) {
        case XDIT_DTYPE_F16: return __half2float(static_cast<const __half*>(p)[i]);
        case XDIT_DTYPE_BF16: return __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]);
        default: return static_cast<const float*>(p)[i];
    }
}

__device__ inline float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

template <class T>
struct AttentionParams {
    Ref<const T*> q, k, v;
    Ref<T*> out;
    Ref<const bool*> mask;  // [B, Sk]; data null when absent
    Ref<const void*> bias;  // [B, H, Sq, Sk] (broadcast views allowed); data null when absent
    int32_t bias_dtype;
    Ref<float*> lse;  // [B, H, Sq]; data null when absent
    int64_t batch, sq, sk, heads, d, dv;
    float scale;
};

template <class T, int kPerLane>
__global__ void attention_kernel(AttentionParams<T> p) {
    const int64_t row = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
    const int lane = threadIdx.x % 32;
    if (row >= p.batch * p.heads * p.sq) return;  // whole warps leave together
    const int64_t i = row % p.sq, h = (row / p.sq) % p.heads, b = row / (p.sq * p.heads);

    const T* q = p.q.data + b * p.q.strides[0] + i * p.q.strides[1] + h * p.q.strides[2];
    float qv[kPerLane], acc[kPerLane];
    for (int j = 0; j < kPerLane; ++j) {
        const int64_t c = lane + 32 * j;
        qv[j] = c < p.d ? load_float(q[c]) * p.scale : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int64_t key = 0; key < p.sk; ++key) {
        if (p.mask.data != nullptr && !p.mask.data[b * p.mask.strides[0] + key * p.mask.strides[1]]) continue;
        const T* kr = p.k.data + b * p.k.strides[0] + key * p.k.strides[1] + h * p.k.strides[2];
        float s = 0.0f;
        for (int j = 0; j < kPerLane; ++j) {
            const int64_t c = lane + 32 * j;
            if (c < p.d) s += qv[j] * load_float(kr[c]);
        }
        s = warp_sum(s);
        if (p.bias.data != nullptr)
            s += load_any(p.bias.data, p.bias_dtype,
                          b * p.bias.strides[0] + h * p.bias.strides[1] + i * p.bias.strides[2] + key * p.bias.strides[3]);
        if (s == -INFINITY) continue;  // a −inf bias masks the key as the mask does
        const float m_new = fmaxf(m, s);
        const float correction = expf(m - m_new);  // 0 for the first key that counts
        const float weight = expf(s - m_new);
        l = l * correction + weight;
        const T* vr = p.v.data + b * p.v.strides[0] + key * p.v.strides[1] + h * p.v.strides[2];
        for (int j = 0; j < kPerLane; ++j) {
            const int64_t c = lane + 32 * j;
            if (c < p.dv) acc[j] = acc[j] * correction + weight * load_float(vr[c]);
        }
        m = m_new;
    }
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;  // a query with no unmasked key gets zeros
    T* out = p.out.data + b * p.out.strides[0] + i * p.out.strides[1] + h * p.out.strides[2];
    for (int j = 0; j < kPerLane; ++j) {
        const int64_t c = lane + 32 * j;
        if (c < p.dv) out[c] = store_float<T>(acc[j] * inv);
    }
    if (p.lse.data != nullptr && lane == 0)
        p.lse.data[b * p.lse.strides[0] + h * p.lse.strides[1] + i * p.lse.strides[2]] = l > 0.0f ? m + logf(l) : -INFINITY;
}

template <class T, int kPerLane>
void launch(const AttentionParams<T>& p, cudaStream_t stream) {
    const int64_t threads = p.batch * p.heads * p.sq * 32;
    const int block = 32 * kWarpsPerBlock;
    attention_kernel<T, kPerLane><<<static_cast<unsigned>((threads + block - 1) / block), block, 0, stream>>>(p);
    check_launch("attention kernel");
}

template <class T>
__global__ void merge_kernel(Ref<const T*> out_a, Ref<const float*> lse_a, Ref<const T*> out_b, Ref<const float*> lse_b,
                             Ref<T*> out, Ref<float*> lse, int64_t batch, int64_t s, int64_t heads, int64_t d) {
    const int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (row >= batch * s * heads) return;
    const int64_t h = row % heads, i = (row / heads) % s, b = row / (heads * s);
    const float la = lse_a.data[b * lse_a.strides[0] + h * lse_a.strides[1] + i * lse_a.strides[2]];
    const float lb = lse_b.data[b * lse_b.strides[0] + h * lse_b.strides[1] + i * lse_b.strides[2]];
    const float m = fmaxf(la, lb);
    const T* xa = out_a.data + b * out_a.strides[0] + i * out_a.strides[1] + h * out_a.strides[2];
    const T* xb = out_b.data + b * out_b.strides[0] + i * out_b.strides[1] + h * out_b.strides[2];
    T* y = out.data + b * out.strides[0] + i * out.strides[1] + h * out.strides[2];
    float* merged = lse.data + b * lse.strides[0] + h * lse.strides[1] + i * lse.strides[2];
    if (m == -INFINITY) {  // neither part saw an unmasked key
        for (int64_t c = 0; c < d; ++c) y[c * out.strides[3]] = store_float<T>(0.0f);
        *merged = -INFINITY;
        return;
    }
    const float wa = expf(la - m), wb = expf(lb - m), total = wa + wb;
    for (int64_t c = 0; c < d; ++c)
        y[c * out.strides[3]] =
            store_float<T>((wa * load_float(xa[c * out_a.strides[3]]) + wb * load_float(xb[c * out_b.strides[3]])) / total);
    *merged = m + logf(total);
}

}  // namespace

void launch_attention(const AttentionArgs& a, cudaStream_t stream) {
    if (launch_flash_attention(a, stream)) return;
    const int64_t widest = std::max(a.q.shape[3], a.v.shape[3]);
    if (widest > kMaxHeadDim)
        fail(XDIT_STATUS_UNSUPPORTED, "CUDA attention takes head dimensions up to " + std::to_string(kMaxHeadDim) +
                                          ", got " + std::to_string(widest));
    dispatch_float(a.q.dtype, [&](auto tag) {
        using T = decltype(tag);
        AttentionParams<T> p{};
        p.q = ref<const T*>(a.q);
        p.k = ref<const T*>(a.k);
        p.v = ref<const T*>(a.v);
        p.out = ref<T*>(a.out);
        if (a.key_mask) p.mask = ref<const bool*>(*a.key_mask);
        if (a.bias) {
            p.bias = ref<const void*>(*a.bias);
            p.bias_dtype = a.bias->dtype;
        }
        if (a.lse) p.lse = ref<float*>(*a.lse);
        p.batch = a.q.shape[0];
        p.sq = a.q.shape[1];
        p.heads = a.q.shape[2];
        p.sk = a.k.shape[1];
        p.d = a.q.shape[3];
        p.dv = a.v.shape[3];
        p.scale = a.scale;
        if (p.batch * p.heads * p.sq == 0) return;
        if (widest <= 32) launch<T, 1>(p, stream);
        else if (widest <= 64) launch<T, 2>(p, stream);
        else if (widest <= 128) launch<T, 4>(p, stream);
        else if (widest <= 256) launch<T, 8>(p, stream);
        else launch<T, 16>(p, stream);
    });
}

void launch_attention_merge(const MergeArgs& a, cudaStream_t stream) {
    dispatch_float(a.out.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t batch = a.out.shape[0], s = a.out.shape[1], heads = a.out.shape[2], d = a.out.shape[3];
        const int64_t rows = batch * s * heads;
        if (rows == 0) return;
        merge_kernel<T><<<blocks_for(rows), kThreads, 0, stream>>>(
            ref<const T*>(a.out_a), ref<const float*>(a.lse_a), ref<const T*>(a.out_b), ref<const float*>(a.lse_b),
            ref<T*>(a.out), ref<float*>(a.lse), batch, s, heads, d);
        check_launch("attention merge kernel");
    });
}

}  // namespace xdit::cuda
