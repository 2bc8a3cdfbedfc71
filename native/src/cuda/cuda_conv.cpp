// Convolution on CUDA. The large ones are GEMMs on cuBLASLt (tensor cores for bf16/f16, true fp32 for
// f32), band by band of output rows: im2col writes the band's input patches as a [pixels, Cin·kh·kw]
// matrix into scratch, and out[n, :, band] = W[Cout, Cin·kh·kw] · patchesᵀ lands in place, since a band's
// rows follow each other in every channel plane; the bias is added after. Small convolutions, and layouts
// the GEMM cannot read or write in place, run the direct kernel.
#include <algorithm>

#include "core/allocator.h"
#include "cuda_backend.h"
#include "kernels.h"

namespace xdit::cuda {

namespace {

constexpr size_t kPatchBytes = size_t(64) << 20;  // scratch for one band's patches
constexpr int64_t kSmallestGemmSide = 8;          // below this many output channels or patch elements, direct

// W reads as a row-major [Cout, Cin·kh·kw] matrix and each channel plane of out as rows of Wo.
bool gemm_form_applies(const ConvArgs& a) {
    const TensorDesc& w = a.weight;
    const TensorDesc& o = a.out;
    const int64_t patch = w.shape[1] * w.shape[2] * w.shape[3];
    const bool weight_matrix = w.strides[3] == 1 && w.strides[2] == w.shape[3] && w.strides[1] == w.shape[2] * w.shape[3] &&
                               w.strides[0] >= patch;
    const bool out_planes = o.strides[3] == 1 && o.strides[2] == o.shape[3] && o.strides[1] >= o.shape[2] * o.shape[3];
    return weight_matrix && out_planes && w.shape[0] >= kSmallestGemmSide && patch >= kSmallestGemmSide;
}

}  // namespace

void CudaBackend::conv2d(const ConvArgs& a) {
    if (!gemm_form_applies(a)) {
        launch(launch_conv2d, a);
        return;
    }
    const int64_t images = a.out.shape[0], height = a.out.shape[2], width = a.out.shape[3];
    const int64_t patch = a.weight.shape[1] * a.weight.shape[2] * a.weight.shape[3];
    const size_t element = a.x.element_size();
    const int64_t band = std::clamp<int64_t>(static_cast<int64_t>(kPatchBytes / (width * patch * element)), 1, height);
    ScratchBlock patches(allocator(), static_cast<size_t>(band * width * patch) * element);
    for (int64_t image = 0; image < images; ++image)
        for (int64_t row = 0; row < height; row += band) {
            const int64_t rows = std::min(band, height - row);
            launch(launch_im2col, a, image, row, rows, patches.data());
            GemmProblem product;
            product.dtype = a.out.dtype;
            product.m = a.out.shape[1];
            product.n = rows * width;
            product.k = patch;
            product.a = {a.weight.data, false, a.weight.strides[0]};
            product.b = {patches.data(), false, patch};
            product.out = {static_cast<char*>(a.out.data) + (image * a.out.strides[0] + row * a.out.strides[2]) * element, false,
                           a.out.strides[1]};
            try {
                gemm(product);
            } catch (const Error& e) {
                // cuBLASLt has no kernel for this alignment (a band of an odd-width 16-bit image starts on a
                // 2-byte boundary): the direct kernel writes the whole output instead.
                if (e.status() != XDIT_STATUS_UNSUPPORTED) throw;
                launch(launch_conv2d, a);
                return;
            }
            if (a.bias) launch(launch_channel_bias, a, image, row, rows);
        }
}

}  // namespace xdit::cuda
