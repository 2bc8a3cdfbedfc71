// 2-D convolution kernels on CUDA. The direct form: one thread per output element sums Cin·kh·kw
// products in fp32, reading x and the weight through their strides (zero padding by bounds checks) —
// correct for every shape the API accepts, used for the small ones. The large ones go through cuBLASLt
// (cuda_conv.cpp) with the two kernels below: im2col, which lays a band of output rows' input patches
// out as a [pixels, Cin·kh·kw] matrix, and the per-channel bias add that follows the GEMM.
#include "device_elements.cuh"
#include "kernels.h"

namespace xdit::cuda {

namespace {

struct ConvShape {
    int64_t n, cin, h, w, cout, kh, kw, ho, wo;
    int64_t x_strides[4], w_strides[4], out_strides[4], bias_stride;
    int32_t stride_h, stride_w, pad_h, pad_w;
};

template <class T>
__global__ void conv2d_kernel(const T* x, const T* weight, const T* bias, T* out, ConvShape s) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= s.n * s.cout * s.ho * s.wo) return;
    const int64_t ox = i % s.wo, oy = (i / s.wo) % s.ho, o = (i / (s.wo * s.ho)) % s.cout, image = i / (s.wo * s.ho * s.cout);
    float acc = bias != nullptr ? load_float(bias[o * s.bias_stride]) : 0.0f;
    for (int64_t c = 0; c < s.cin; ++c)
        for (int64_t ky = 0; ky < s.kh; ++ky) {
            const int64_t iy = oy * s.stride_h - s.pad_h + ky;
            if (iy < 0 || iy >= s.h) continue;
            for (int64_t kx = 0; kx < s.kw; ++kx) {
                const int64_t ix = ox * s.stride_w - s.pad_w + kx;
                if (ix < 0 || ix >= s.w) continue;
                acc += load_float(x[image * s.x_strides[0] + c * s.x_strides[1] + iy * s.x_strides[2] + ix * s.x_strides[3]]) *
                       load_float(weight[o * s.w_strides[0] + c * s.w_strides[1] + ky * s.w_strides[2] + kx * s.w_strides[3]]);
            }
        }
    out[image * s.out_strides[0] + o * s.out_strides[1] + oy * s.out_strides[2] + ox * s.out_strides[3]] = store_float<T>(acc);
}

template <class T>
__global__ void im2col_kernel(const T* x, T* patches, ConvShape s, int64_t image, int64_t first_row, int64_t pixels) {
    const int64_t patch = s.cin * s.kh * s.kw;
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= pixels * patch) return;
    const int64_t k = i % patch, p = i / patch;
    const int64_t kx = k % s.kw, ky = (k / s.kw) % s.kh, c = k / (s.kw * s.kh);
    const int64_t oy = first_row + p / s.wo, ox = p % s.wo;
    const int64_t iy = oy * s.stride_h - s.pad_h + ky, ix = ox * s.stride_w - s.pad_w + kx;
    patches[i] = iy >= 0 && iy < s.h && ix >= 0 && ix < s.w
                     ? x[image * s.x_strides[0] + c * s.x_strides[1] + iy * s.x_strides[2] + ix * s.x_strides[3]]
                     : store_float<T>(0.0f);
}

template <class T>
__global__ void channel_bias_kernel(T* out, const T* bias, int64_t channels, int64_t pixels, int64_t channel_stride,
                                    int64_t bias_stride) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= channels * pixels) return;
    const int64_t c = i / pixels, p = i % pixels;
    T& y = out[c * channel_stride + p];
    y = store_float<T>(load_float(y) + load_float(bias[c * bias_stride]));
}

ConvShape shape_of(const ConvArgs& a) {
    ConvShape s{};
    s.n = a.x.shape[0];
    s.cin = a.x.shape[1];
    s.h = a.x.shape[2];
    s.w = a.x.shape[3];
    s.cout = a.weight.shape[0];
    s.kh = a.weight.shape[2];
    s.kw = a.weight.shape[3];
    s.ho = a.out.shape[2];
    s.wo = a.out.shape[3];
    for (int d = 0; d < 4; ++d) {
        s.x_strides[d] = a.x.strides[d];
        s.w_strides[d] = a.weight.strides[d];
        s.out_strides[d] = a.out.strides[d];
    }
    s.bias_stride = a.bias ? a.bias->strides[0] : 0;
    s.stride_h = a.stride_h;
    s.stride_w = a.stride_w;
    s.pad_h = a.pad_h;
    s.pad_w = a.pad_w;
    return s;
}

}  // namespace

void launch_im2col(const ConvArgs& a, int64_t image, int64_t first_row, int64_t rows, void* patches, cudaStream_t stream) {
    dispatch_float(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const ConvShape s = shape_of(a);
        const int64_t pixels = rows * s.wo;
        im2col_kernel<T><<<blocks_for(pixels * s.cin * s.kh * s.kw), kThreads, 0, stream>>>(
            static_cast<const T*>(a.x.data), static_cast<T*>(patches), s, image, first_row, pixels);
        check_launch("im2col kernel");
    });
}

void launch_channel_bias(const ConvArgs& a, int64_t image, int64_t first_row, int64_t rows, cudaStream_t stream) {
    dispatch_float(a.out.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t channels = a.out.shape[1], pixels = rows * a.out.shape[3];
        T* band = static_cast<T*>(a.out.data) + image * a.out.strides[0] + first_row * a.out.strides[2];
        channel_bias_kernel<T><<<blocks_for(channels * pixels), kThreads, 0, stream>>>(
            band, static_cast<const T*>(a.bias->data), channels, pixels, a.out.strides[1], a.bias->strides[0]);
        check_launch("conv2d bias kernel");
    });
}

void launch_conv2d(const ConvArgs& a, cudaStream_t stream) {
    dispatch_float(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const ConvShape s = shape_of(a);
        const int64_t total = s.n * s.cout * s.ho * s.wo;
        if (total == 0) return;
        conv2d_kernel<T><<<blocks_for(total), kThreads, 0, stream>>>(
            static_cast<const T*>(a.x.data), static_cast<const T*>(a.weight.data),
            a.bias ? static_cast<const T*>(a.bias->data) : nullptr, static_cast<T*>(a.out.data), s);
        check_launch("conv2d kernel");
    });
}

}  // namespace xdit::cuda
