// 2-D convolution as GEMM over tiles of output pixels: each tile gathers its receptive fields into
// a [pixels, Cin·kh·kw] matrix (im2col) and multiplies it with the weight [Cout, Cin·kh·kw], so the
// scratch memory is bounded by the tile size whatever the image size (a VAE decoder at 1024² would
// otherwise need gigabytes of im2col). Threads take (image, tile) tasks.
#include <algorithm>

#include "core/allocator.h"
#include "cpu_backend.h"
#include "element.h"

namespace xdit::cpu {

namespace {
constexpr int64_t kTilePixels = 256;
}

void CpuBackend::conv2d(const ConvArgs& a) {
    dispatch_float_dtype(a.x.dtype, [&](auto tag) {
        using T = decltype(tag);
        const int64_t n = a.x.shape[0], cin = a.x.shape[1], h = a.x.shape[2], w = a.x.shape[3];
        const int64_t cout = a.weight.shape[0], kh = a.weight.shape[2], kw = a.weight.shape[3];
        const int64_t ho = a.out.shape[2], wo = a.out.shape[3], pixels = ho * wo, k = cin * kh * kw;

        // The weight as a contiguous f32 [Cout, K] matrix (read by every task).
        ScratchBlock weight(allocator(), size_t(cout * k) * sizeof(float));
        float* wf = weight.as<float>();
        for (int64_t o = 0; o < cout; ++o)
            for (int64_t c = 0; c < cin; ++c)
                for (int64_t i = 0; i < kh; ++i)
                    for (int64_t j = 0; j < kw; ++j)
                        wf[((o * cin + c) * kh + i) * kw + j] = to_float(static_cast<const T*>(a.weight.data)[
                            o * a.weight.strides[0] + c * a.weight.strides[1] + i * a.weight.strides[2] + j * a.weight.strides[3]]);

        const int64_t tiles = (pixels + kTilePixels - 1) / kTilePixels;
        const int64_t tasks = n * tiles;
        const int slots = static_cast<int>(std::min<int64_t>(pool_.size(), tasks));
        const int64_t per_slot = kTilePixels * k + cout * kTilePixels;
        ScratchBlock scratch(allocator(), size_t(per_slot) * size_t(slots) * sizeof(float));
        const T* x = static_cast<const T*>(a.x.data);
        const T* bias = a.bias ? static_cast<const T*>(a.bias->data) : nullptr;

        pool_.parallel_for(slots, 1, [&](int64_t s0, int64_t s1) {
            for (int64_t slot = s0; slot < s1; ++slot) {
                float* columns = scratch.as<float>() + slot * per_slot;  // [tile, K]
                float* result = columns + kTilePixels * k;                 // [Cout, tile]
                for (int64_t task = tasks * slot / slots; task < tasks * (slot + 1) / slots; ++task) {
                    const int64_t image = task / tiles, p0 = (task % tiles) * kTilePixels;
                    const int64_t count = std::min(kTilePixels, pixels - p0);
                    for (int64_t p = 0; p < count; ++p) {
                        const int64_t oy = (p0 + p) / wo, ox = (p0 + p) % wo;
                        float* column = columns + p * k;
                        for (int64_t c = 0; c < cin; ++c)
                            for (int64_t i = 0; i < kh; ++i) {
                                const int64_t iy = oy * a.stride_h - a.pad_h + i;
                                for (int64_t j = 0; j < kw; ++j) {
                                    const int64_t ix = ox * a.stride_w - a.pad_w + j;
                                    const bool inside = iy >= 0 && iy < h && ix >= 0 && ix < w;
                                    column[(c * kh + i) * kw + j] =
                                        inside ? to_float(x[image * a.x.strides[0] + c * a.x.strides[1] +
                                                            iy * a.x.strides[2] + ix * a.x.strides[3]])
                                               : 0.0f;
                                }
                            }
                    }
                    block_gemm(wf, false, k, columns, false, k, result, kTilePixels, cout, count, k, false);
                    for (int64_t o = 0; o < cout; ++o) {
                        const float b = bias ? to_float(bias[o * a.bias->strides[0]]) : 0.0f;
                        T* out = static_cast<T*>(a.out.data) + image * a.out.strides[0] + o * a.out.strides[1];
                        for (int64_t p = 0; p < count; ++p) {
                            const int64_t oy = (p0 + p) / wo, ox = (p0 + p) % wo;
                            out[oy * a.out.strides[2] + ox * a.out.strides[3]] = from_float<T>(result[o * kTilePixels + p] + b);
                        }
                    }
                }
            }
        });
    });
}

}  // namespace xdit::cpu
