// Normalisation on CUDA: layer norm (affine, adaLN modulation), RMS norm and softmax over the last
// dimension, one block per row; group norm over [N, C, spatial...], one block per (sample, group), also
// in the two halves the parallel VAE splits it into (statistics out, statistics in). Statistics in fp32
// from two passes (mean first, then the centred squares, as the CPU computes them), block reductions
// through warp shuffles.
#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

constexpr int kRowThreads = 256;

enum class Reduce { Sum, Max };

// The block-wide sum or max of v (float or double), returned to every thread. `shared` holds one value
// per warp.
template <Reduce R, class V>
__device__ V block_reduce(V v, V* shared) {
    for (int offset = 16; offset > 0; offset /= 2) {
        const V other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = R == Reduce::Sum ? v + other : (v > other ? v : other);
    }
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    __syncthreads();  // `shared` may still be read by an earlier reduction
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : (R == Reduce::Sum ? V(0) : V(-INFINITY));
    for (int offset = 16; offset > 0; offset /= 2) {
        const V other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = R == Reduce::Sum ? v + other : (v > other ? v : other);
    }
    return v;
}

// A [C] parameter vector (weight, bias) with its stride, or none.
template <class T>
struct Parameter {
    const T* data = nullptr;
    int64_t stride = 0;

    __device__ bool present() const { return data != nullptr; }
    __device__ float operator[](int64_t i) const { return load_float(data[i * stride]); }
};

template <class T>
Parameter<T> parameter(const std::optional<TensorDesc>& t) {
    return t ? Parameter<T>{static_cast<const T*>(t->data), t->strides[0]} : Parameter<T>{};
}

// Tensors: x, out, scale, shift (absent ones alias x and are not read).
template <class T>
__global__ void layer_norm_kernel(const T* x, T* out, const T* scale, const T* shift, bool modulate_scale,
                                  bool modulate_shift, Parameter<T> weight, Parameter<T> bias, float eps,
                                  RowIndexer<4> r) {
    __shared__ float shared[32];
    int64_t o[4];
    r.rows.offsets(blockIdx.x, o);
    const int64_t c = r.length;
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) sum += load_float(x[o[0] + i * r.inner[0]]);
    const float mean = block_reduce<Reduce::Sum>(sum, shared) / float(c);
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        const float d = load_float(x[o[0] + i * r.inner[0]]) - mean;
        squares += d * d;
    }
    const float inv = rsqrtf(block_reduce<Reduce::Sum>(squares, shared) / float(c) + eps);
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        float y = (load_float(x[o[0] + i * r.inner[0]]) - mean) * inv;
        if (weight.present()) y *= weight[i];
        if (bias.present()) y += bias[i];
        if (modulate_scale) y *= 1.0f + load_float(scale[o[2] + i * r.inner[2]]);
        if (modulate_shift) y += load_float(shift[o[3] + i * r.inner[3]]);
        out[o[1] + i * r.inner[1]] = store_float<T>(y);
    }
}

template <class T>
__global__ void rms_norm_kernel(const T* x, T* out, Parameter<T> weight, float eps, RowIndexer<2> r) {
    __shared__ float shared[32];
    int64_t o[2];
    r.rows.offsets(blockIdx.x, o);
    const int64_t c = r.length;
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        const float v = load_float(x[o[0] + i * r.inner[0]]);
        squares += v * v;
    }
    const float inv = rsqrtf(block_reduce<Reduce::Sum>(squares, shared) / float(c) + eps);
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) {
        float y = load_float(x[o[0] + i * r.inner[0]]) * inv;
        if (weight.present()) y *= weight[i];
        out[o[1] + i * r.inner[1]] = store_float<T>(y);
    }
}

template <class T>
__global__ void softmax_kernel(const T* x, T* out, RowIndexer<2> r) {
    __shared__ float shared[32];
    int64_t o[2];
    r.rows.offsets(blockIdx.x, o);
    const int64_t c = r.length;
    float m = -INFINITY;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) m = fmaxf(m, load_float(x[o[0] + i * r.inner[0]]));
    m = block_reduce<Reduce::Max>(m, shared);
    float sum = 0.0f;
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x) sum += expf(load_float(x[o[0] + i * r.inner[0]]) - m);
    const float inv = 1.0f / block_reduce<Reduce::Sum>(sum, shared);
    for (int64_t i = threadIdx.x; i < c; i += blockDim.x)
        out[o[1] + i * r.inner[1]] = store_float<T>(expf(load_float(x[o[0] + i * r.inner[0]]) - m) * inv);
}

// One (sample, group) of x [N, C, spatial...]: channel c of the group and spatial index s are element
// c·S + s; `spatial` indexes the spatial dims of x and out.
struct GroupView {
    int64_t x_strides[2], out_strides[2];  // sample and channel strides
    Indexer<2> spatial;
    int64_t spatial_count, per_group, groups;
};

// mode: 0 normalise with computed statistics, 1 write (mean, Σ(x − mean)²) to stats, 2 normalise with
// (mean, 1/√(var + eps)) read from stats. stats is f32 [N, groups, 2] with the given strides.
template <class T>
__global__ void group_norm_kernel(const T* x, T* out, Parameter<T> weight, Parameter<T> bias, double eps, GroupView g,
                                  float* stats, Indexer<1> stats_index, int mode) {
    // Statistics and the normalisation in fp64, as the CPU computes them (a VAE group holds millions of
    // elements).
    __shared__ double shared[32];
    const int64_t sample = blockIdx.x / g.groups, group = blockIdx.x % g.groups, first = group * g.per_group;
    const int64_t count = g.per_group * g.spatial_count;
    auto offsets = [&](int64_t e, int64_t* o) {
        const int64_t channel = first + e / g.spatial_count;
        g.spatial.offsets(e % g.spatial_count, o);
        o[0] += sample * g.x_strides[0] + channel * g.x_strides[1];
        o[1] += sample * g.out_strides[0] + channel * g.out_strides[1];
        return channel;
    };
    int64_t s0[1];
    if (stats != nullptr) stats_index.offsets(sample * g.groups + group, s0);  // the pair is contiguous (checked)
    double mean, inv;
    if (mode == 2) {
        mean = stats[s0[0]];
        inv = stats[s0[0] + 1];
    } else {
        double sum = 0.0;
        for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
            int64_t o[2];
            offsets(e, o);
            sum += load_float(x[o[0]]);
        }
        mean = count > 0 ? block_reduce<Reduce::Sum>(sum, shared) / double(count) : 0.0;
        double squares = 0.0;
        for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
            int64_t o[2];
            offsets(e, o);
            const double d = load_float(x[o[0]]) - mean;
            squares += d * d;
        }
        squares = block_reduce<Reduce::Sum>(squares, shared);
        if (mode == 1) {
            if (threadIdx.x == 0) {
                stats[s0[0]] = static_cast<float>(mean);
                stats[s0[0] + 1] = static_cast<float>(squares);
            }
            return;
        }
        inv = 1.0 / sqrt(squares / double(count) + eps);
    }
    for (int64_t e = threadIdx.x; e < count; e += blockDim.x) {
        int64_t o[2];
        const int64_t channel = offsets(e, o);
        double y = (load_float(x[o[0]]) - mean) * inv;
        if (weight.present()) y *= weight[channel];
        if (bias.present()) y += bias[channel];
        out[o[1]] = store_float<T>(static_cast<float>(y));
    }
}

// Rows are launched one block each; a grid holds at most 2^31 − 1 blocks.
unsigned row_blocks(int64_t rows) {
    if (rows > 0x7fffffff) fail(XDIT_STATUS_UNSUPPORTED, "more than 2^31 - 1 rows in one normalisation");
    return static_cast<unsigned>(rows);
}

}  // namespace

void launch_layer_norm(const NormArgs& a, cudaStream_t stream) {
    dispatch_float(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const TensorDesc& scale = a.scale ? *a.scale : a.x;
        const TensorDesc& shift = a.shift ? *a.shift : a.x;
        const RowIndexer<4> r = make_row_indexer<4>({&a.x, &a.out, &scale, &shift});
        if (r.count == 0) return;
        layer_norm_kernel<T><<<row_blocks(r.count), kRowThreads, 0, stream>>>(
            static_cast<const T*>(a.x.data), static_cast<T*>(a.out.data), static_cast<const T*>(scale.data),
            static_cast<const T*>(shift.data), a.scale.has_value(), a.shift.has_value(), parameter<T>(a.weight),
            parameter<T>(a.bias), static_cast<float>(a.eps), r);
        check_launch("layer norm kernel");
    });
}

void launch_rms_norm(const NormArgs& a, cudaStream_t stream) {
    dispatch_float(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const RowIndexer<2> r = make_row_indexer<2>({&a.x, &a.out});
        if (r.count == 0) return;
        rms_norm_kernel<T><<<row_blocks(r.count), kRowThreads, 0, stream>>>(
            static_cast<const T*>(a.x.data), static_cast<T*>(a.out.data), parameter<T>(a.weight), static_cast<float>(a.eps), r);
        check_launch("RMS norm kernel");
    });
}

void launch_group_norm(const NormArgs& a, bool statistics_only, cudaStream_t stream) {
    dispatch_float(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        // The statistics tensor must hold its pair contiguously (k stride 1), as the API lays it out.
        if (a.stats && a.stats->strides[2] != 1) invalid("group norm statistics must have a unit last stride");
        const TensorDesc& out = statistics_only ? a.x : a.out;  // the statistics pass writes no output
        GroupView g{};
        g.x_strides[0] = a.x.strides[0];
        g.x_strides[1] = a.x.strides[1];
        g.out_strides[0] = out.strides[0];
        g.out_strides[1] = out.strides[1];
        TensorDesc x_spatial = a.x, out_spatial = out;  // the dims after N and C
        x_spatial.rank = out_spatial.rank = a.x.rank - 2;
        for (int d = 0; d < x_spatial.rank; ++d) {
            x_spatial.shape[d] = out_spatial.shape[d] = a.x.shape[d + 2];
            x_spatial.strides[d] = a.x.strides[d + 2];
            out_spatial.strides[d] = out.strides[d + 2];
        }
        g.spatial = make_indexer<2>({&x_spatial, &out_spatial}, &g.spatial_count);
        g.groups = a.groups;
        g.per_group = a.x.shape[1] / a.groups;
        Indexer<1> stats_index{};  // (sample, group) → the offset of its pair
        float* stats = nullptr;
        if (a.stats) {
            TensorDesc pairs = *a.stats;
            pairs.rank = 2;
            int64_t pair_count;
            stats_index = make_indexer<1>({&pairs}, &pair_count);
            stats = static_cast<float*>(a.stats->data);
        }
        const int64_t blocks = a.x.shape[0] * a.groups;
        if (blocks == 0) return;
        const int mode = statistics_only ? 1 : a.stats ? 2 : 0;
        group_norm_kernel<T><<<row_blocks(blocks), kRowThreads, 0, stream>>>(
            static_cast<const T*>(a.x.data), static_cast<T*>(out.data), parameter<T>(a.weight), parameter<T>(a.bias),
            a.eps, g, stats, stats_index, mode);
        check_launch("group norm kernel");
    });
}

void launch_softmax(const TensorDesc& x, const TensorDesc& out, cudaStream_t stream) {
    dispatch_float(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const RowIndexer<2> r = make_row_indexer<2>({&x, &out});
        if (r.count == 0) return;
        softmax_kernel<T><<<row_blocks(r.count), kRowThreads, 0, stream>>>(static_cast<const T*>(x.data),
                                                                          static_cast<T*>(out.data), r);
        check_launch("softmax kernel");
    });
}

}  // namespace xdit::cuda
