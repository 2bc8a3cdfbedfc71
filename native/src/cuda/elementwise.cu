// Elementwise CUDA kernels over arbitrary strides: fill, copy/cast, add/mul, bias + activation.
// One thread per element; the coalesced shape and strides travel by value in the launch.
#include <type_traits>

#include "core/dtype.h"
#include "cuda_check.h"
#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

template <class S, class D>
__device__ inline D convert(S v) {
    if constexpr (std::is_same_v<S, D>) return v;
    else if constexpr (is_float_v<D>) return store_float<D>(load_float(v));
    else if constexpr (std::is_same_v<D, bool>) {
        if constexpr (is_float_v<S>) return load_float(v) != 0.0f;
        else return v != 0;
    } else if constexpr (is_float_v<S>) return static_cast<D>(load_float(v));  // rejected before launch
    else return static_cast<D>(v);
}

template <class Fn>
void dispatch(int32_t dtype, Fn&& fn) {
    switch (dtype) {
        case XDIT_DTYPE_F32: fn(float{}); return;
        case XDIT_DTYPE_F16: fn(__half{}); return;
        case XDIT_DTYPE_BF16: fn(__nv_bfloat16{}); return;
        case XDIT_DTYPE_I32: fn(int32_t{}); return;
        case XDIT_DTYPE_I64: fn(int64_t{}); return;
        case XDIT_DTYPE_BOOL: fn(bool{}); return;
        default: invalid("unknown dtype " + std::to_string(dtype));
    }
}

template <class T>
__global__ void fill_kernel(T* out, T value, Indexer<1> ix, int64_t total) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t o[1];
    ix.offsets(i, o);
    out[o[0]] = value;
}

template <class S, class D>
__global__ void copy_kernel(const S* src, D* out, Indexer<2> ix, int64_t total) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t o[2];
    ix.offsets(i, o);
    out[o[1]] = convert<S, D>(src[o[0]]);
}

__device__ inline float apply_epilogue(float x, int32_t epilogue);

__device__ inline float apply_unary(int32_t op, float x) {
    switch (op) {
        case XDIT_UNARY_GELU_TANH: return apply_epilogue(x, XDIT_EPILOGUE_GELU_TANH);
        case XDIT_UNARY_GELU_ERF: return apply_epilogue(x, XDIT_EPILOGUE_GELU_ERF);
        case XDIT_UNARY_SILU: return apply_epilogue(x, XDIT_EPILOGUE_SILU);
        case XDIT_UNARY_EXP: return expf(x);
        case XDIT_UNARY_ABS: return fabsf(x);
        case XDIT_UNARY_NEG: return -x;
        case XDIT_UNARY_SIN: return static_cast<float>(sin(static_cast<double>(x)));
        case XDIT_UNARY_COS: return static_cast<float>(cos(static_cast<double>(x)));
        default: return x;
    }
}

// The pointwise maps of MapKind; unused inputs alias out and are never read.
struct MapParams {
    int kind;
    int code;
    float p0, p1;
};

template <class T>
__global__ void map_kernel(MapParams op, const T* a, const T* b, const T* c, T* out, Indexer<4> ix, int64_t total) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t o[4];
    ix.offsets(i, o);
    const float x = load_float(a[o[0]]);
    float y;
    switch (static_cast<MapKind>(op.kind)) {
        case MapKind::Binary: {
            const float v = load_float(b[o[1]]);
            y = op.code == XDIT_BINARY_ADD   ? x + v
                : op.code == XDIT_BINARY_SUB ? x - v
                : op.code == XDIT_BINARY_MUL ? x * v
                : op.code == XDIT_BINARY_MAX ? fmaxf(x, v)
                                             : x / v;
            break;
        }
        case MapKind::Unary: y = apply_unary(op.code, x); break;
        case MapKind::Affine: y = op.p0 * x + op.p1; break;
        case MapKind::Clamp: y = fminf(fmaxf(x, op.p0), op.p1); break;
        case MapKind::Lerp: y = x + op.p0 * (load_float(b[o[1]]) - x); break;
        case MapKind::AddMul: y = x + load_float(b[o[1]]) * load_float(c[o[2]]); break;
        default: y = apply_unary(op.code, x) * load_float(b[o[1]]); break;  // Gated
    }
    out[o[3]] = store_float<T>(y);
}

__device__ inline float apply_epilogue(float x, int32_t epilogue) {
    switch (epilogue) {
        case XDIT_EPILOGUE_GELU_TANH: return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
        case XDIT_EPILOGUE_GELU_ERF: return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
        case XDIT_EPILOGUE_SILU: return x / (1.0f + expf(-x));
        default: return x;
    }
}

template <class T>
__global__ void bias_epilogue_kernel(T* out, const T* bias, int64_t columns, int32_t epilogue, Indexer<1> ix,
                                     int64_t total) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int64_t o[1];
    ix.offsets(i, o);
    float x = load_float(out[o[0]]);
    if (bias != nullptr) x += load_float(bias[i % columns]);
    out[o[0]] = store_float<T>(apply_epilogue(x, epilogue));
}

}  // namespace

void launch_fill(const TensorDesc& out, double value, cudaStream_t stream) {
    dispatch(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        T v;
        if constexpr (is_float_v<T>) {
            // Round on the host with the library's own conversion, so both backends fill the same bits.
            const float f = static_cast<float>(value);
            if constexpr (std::is_same_v<T, float>) {
                v = f;
            } else if constexpr (std::is_same_v<T, __half>) {
                __half_raw raw;
                raw.x = f32_to_f16(f);
                v = raw;
            } else {
                __nv_bfloat16_raw raw;
                raw.x = f32_to_bf16(f);
                v = raw;
            }
        } else if constexpr (std::is_same_v<T, bool>) {
            v = value != 0.0;
        } else {
            v = static_cast<T>(value);
        }
        int64_t total;
        const Indexer<1> ix = make_indexer<1>({&out}, &total);
        fill_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(static_cast<T*>(out.data), v, ix, total);
        check_launch("fill kernel");
    });
}

void launch_copy(const TensorDesc& src, const TensorDesc& out, cudaStream_t stream) {
    dispatch(src.dtype, [&](auto src_tag) {
        using S = decltype(src_tag);
        dispatch(out.dtype, [&](auto out_tag) {
            using D = decltype(out_tag);
            int64_t total;
            const Indexer<2> ix = make_indexer<2>({&src, &out}, &total);
            copy_kernel<S, D><<<blocks_for(total), kThreads, 0, stream>>>(static_cast<const S*>(src.data),
                                                                          static_cast<D*>(out.data), ix, total);
            check_launch("copy kernel");
        });
    });
}

void launch_map(const MapOp& op, cudaStream_t stream) {
    dispatch_float(op.out.dtype, [&](auto tag) {
        using T = decltype(tag);
        const TensorDesc& a = op.inputs[0];
        const TensorDesc& b = op.arity > 1 ? op.inputs[1] : op.out;
        const TensorDesc& c = op.arity > 2 ? op.inputs[2] : op.out;
        int64_t total;
        const Indexer<4> ix = make_indexer<4>({&a, &b, &c, &op.out}, &total);
        const MapParams params{static_cast<int>(op.kind), op.code, static_cast<float>(op.p0), static_cast<float>(op.p1)};
        map_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(params, static_cast<const T*>(a.data),
                                                                 static_cast<const T*>(b.data), static_cast<const T*>(c.data),
                                                                 static_cast<T*>(op.out.data), ix, total);
        check_launch("map kernel");
    });
}

void launch_bias_epilogue(const TensorDesc& out, const void* bias, int32_t epilogue, cudaStream_t stream) {
    dispatch_float(out.dtype, [&](auto tag) {
        using T = decltype(tag);
        // Coalescing keeps the row-major element order, so the linear index modulo the column count
        // is still the column.
        int64_t total;
        const Indexer<1> ix = make_indexer<1>({&out}, &total);
        bias_epilogue_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
            static_cast<T*>(out.data), static_cast<const T*>(bias), out.dim(-1), epilogue, ix, total);
        check_launch("bias/epilogue kernel");
    });
}

}  // namespace xdit::cuda
