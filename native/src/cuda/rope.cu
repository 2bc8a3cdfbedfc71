// Rotary position embedding on CUDA, in the two pairings of the CPU kernel (rope.cpp): interleaved
// pairs (2i, 2i+1) as Flux does, halves (i, i + D/2) for the rotate-half form. One thread per pair:
// the four tensors are viewed with the last dimension halved (stride doubled when interleaved), so the
// elementwise indexer finds each pair's first member and the second lies a fixed step further.
#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

template <class T, class C>
__global__ void rope_kernel(const T* x, const C* cos, const C* sin, T* out, Indexer<4> ix, int64_t total,
                            int64_t x_step, int64_t cos_step, int64_t sin_step, int64_t out_step) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t o[4];
    ix.offsets(i, o);
    // Both members are read before either is written (out may be x).
    const float x0 = load_float(x[o[0]]), x1 = load_float(x[o[0] + x_step]);
    out[o[3]] = store_float<T>(x0 * load_float(cos[o[1]]) - x1 * load_float(sin[o[2]]));
    out[o[3] + out_step] = store_float<T>(x1 * load_float(cos[o[1] + cos_step]) + x0 * load_float(sin[o[2] + sin_step]));
}

// t with its last dimension cut to the pairs' first members; *step = the distance to the second.
TensorDesc first_members(const TensorDesc& t, bool interleaved, int64_t* step) {
    TensorDesc view = t;
    const int last = t.rank - 1;
    const int64_t stride = t.strides[last];
    view.shape[last] = t.shape[last] / 2;
    view.strides[last] = interleaved ? 2 * stride : stride;
    *step = interleaved ? stride : view.shape[last] * stride;
    return view;
}

}  // namespace

void launch_rope(const RopeArgs& a, cudaStream_t stream) {
    if (a.sin.dtype != a.cos.dtype) invalid("cos and sin must have one dtype");
    dispatch_float(a.x.dtype, [&](auto x_tag) {
        using T = decltype(x_tag);
        dispatch_float(a.cos.dtype, [&](auto table_tag) {
            using C = decltype(table_tag);
            int64_t x_step, cos_step, sin_step, out_step;
            const TensorDesc x = first_members(a.x, a.interleaved, &x_step);
            const TensorDesc cos = first_members(a.cos, a.interleaved, &cos_step);
            const TensorDesc sin = first_members(a.sin, a.interleaved, &sin_step);
            const TensorDesc out = first_members(a.out, a.interleaved, &out_step);
            int64_t total;
            const Indexer<4> ix = make_indexer<4>({&x, &cos, &sin, &out}, &total);
            if (total == 0) return;
            rope_kernel<T, C><<<blocks_for(total), kThreads, 0, stream>>>(
                static_cast<const T*>(a.x.data), static_cast<const C*>(a.cos.data), static_cast<const C*>(a.sin.data),
                static_cast<T*>(a.out.data), ix, total, x_step, cos_step, sin_step, out_step);
            check_launch("rope kernel");
        });
    });
}

}  // namespace xdit::cuda
