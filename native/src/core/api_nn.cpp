// C entry points of the neural-network ops: normalisations, attention, rotary embedding, convolution.
// Each validates shapes and dtypes here so that every backend receives consistent operands.
#include <cmath>
#include <string>

#include "api_guard.h"
#include "context.h"
#include "dtype.h"
#include "ops.h"
#include "tensor_desc.h"

namespace xdit {
namespace {

std::string dims(std::initializer_list<int64_t> values) {
    std::string s = "[";
    bool first = true;
    for (int64_t v : values) {
        s += (first ? "" : ", ") + std::to_string(v);
        first = false;
    }
    return s + "]";
}

void require_shape(const TensorDesc& t, const char* name, std::initializer_list<int64_t> expected) {
    bool ok = t.rank == static_cast<int32_t>(expected.size());
    int i = 0;
    for (int64_t e : expected) ok = ok && t.shape[i++] == e;
    if (!ok) invalid(t.describe(name) + ": expected " + dims(expected));
}

// An optional operand: absent when null, else checked for dtype (one of the allowed) and shape.
std::optional<TensorDesc> optional_tensor(const xdit_tensor* t, const char* name) {
    if (t == nullptr) return std::nullopt;
    return check_tensor(t, name);
}

void require_unit_inner_stride(const TensorDesc& t, const char* name) {
    if (t.rank > 0 && t.dim(-1) > 1 && t.stride(-1) != 1)
        invalid(t.describe(name) + ": the last dimension must have unit stride");
}

NormArgs prepare_norm(const xdit_tensor* x, const xdit_tensor* weight, const xdit_tensor* bias, double eps,
                      const xdit_tensor* out, int64_t parameter_length) {
    NormArgs a;
    a.x = check_tensor(x, "x");
    a.out = check_tensor(out, "out");
    require_float(a.x, "x");
    require_same_dtype(a.x, "x", a.out, "out");
    require_same_shape(a.x, "x", a.out, "out");
    require_writable(a.out, "out");
    if (!(eps >= 0) || !std::isfinite(eps)) invalid("eps must be finite and >= 0, got " + std::to_string(eps));
    a.eps = eps;
    a.weight = optional_tensor(weight, "weight");
    a.bias = optional_tensor(bias, "bias");
    for (auto* p : {&a.weight, &a.bias}) {
        if (!*p) continue;
        const char* name = p == &a.weight ? "weight" : "bias";
        require_same_dtype(**p, name, a.x, "x");
        require_shape(**p, name, {parameter_length});
    }
    return a;
}

// The checks of x and groups every group-norm entry point shares.
TensorDesc check_group_norm_input(const xdit_tensor* x, int32_t groups) {
    const TensorDesc tx = check_tensor(x, "x");
    if (tx.rank < 2) invalid(tx.describe("x") + ": group norm needs [N, C, ...]");
    if (groups < 1 || tx.shape[1] % groups != 0)
        invalid(tx.describe("x") + ": " + std::to_string(groups) + " groups do not divide " + std::to_string(tx.shape[1]) + " channels");
    return tx;
}

TensorDesc check_group_stats(const xdit_tensor* stats, const char* name, const TensorDesc& x, int32_t groups) {
    const TensorDesc t = check_tensor(stats, name);
    if (t.dtype != XDIT_DTYPE_F32) invalid(t.describe(name) + " must be f32");
    require_shape(t, name, {x.shape[0], groups, 2});
    return t;
}

}  // namespace
}  // namespace xdit

using namespace xdit;

extern "C" {

xdit_status xdit_layer_norm(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight,
                            const xdit_tensor* bias, const xdit_tensor* scale, const xdit_tensor* shift, double eps,
                            const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc tx = check_tensor(x, "x");
        if (tx.rank < 1) invalid(tx.describe("x") + ": layer norm needs rank >= 1");
        NormArgs a = prepare_norm(x, weight, bias, eps, out, tx.dim(-1));
        a.scale = optional_tensor(scale, "scale");
        a.shift = optional_tensor(shift, "shift");
        for (auto* p : {&a.scale, &a.shift}) {
            if (!*p) continue;
            const char* name = p == &a.scale ? "scale" : "shift";
            require_same_dtype(**p, name, a.x, "x");
            require_same_shape(**p, name, a.x, "x");
        }
        if (a.x.numel() > 0) c.backend().layer_norm(a);
    });
}

xdit_status xdit_rms_norm(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight, double eps,
                          const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc tx = check_tensor(x, "x");
        if (tx.rank < 1) invalid(tx.describe("x") + ": RMS norm needs rank >= 1");
        const NormArgs a = prepare_norm(x, weight, nullptr, eps, out, tx.dim(-1));
        if (a.x.numel() > 0) c.backend().rms_norm(a);
    });
}

xdit_status xdit_group_norm(xdit_context* context, const xdit_tensor* x, int32_t groups, const xdit_tensor* weight,
                            const xdit_tensor* bias, double eps, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc tx = check_group_norm_input(x, groups);
        NormArgs a = prepare_norm(x, weight, bias, eps, out, tx.shape[1]);
        a.groups = groups;
        if (a.x.numel() > 0) c.backend().group_norm(a);
    });
}

xdit_status xdit_group_norm_stats(xdit_context* context, const xdit_tensor* x, int32_t groups, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        NormArgs a;
        a.x = check_group_norm_input(x, groups);
        require_float(a.x, "x");
        a.groups = groups;
        a.stats = check_group_stats(out, "out", a.x, groups);
        require_writable(*a.stats, "out");
        if (a.stats->numel() > 0) c.backend().group_norm_stats(a);
    });
}

xdit_status xdit_group_norm_apply(xdit_context* context, const xdit_tensor* x, int32_t groups, const xdit_tensor* stats,
                                  const xdit_tensor* weight, const xdit_tensor* bias, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc tx = check_group_norm_input(x, groups);
        NormArgs a = prepare_norm(x, weight, bias, 0.0, out, tx.shape[1]);
        a.groups = groups;
        a.stats = check_group_stats(stats, "stats", a.x, groups);
        if (a.x.numel() > 0) c.backend().group_norm(a);
    });
}

xdit_status xdit_attention(xdit_context* context, const xdit_tensor* q, const xdit_tensor* k, const xdit_tensor* v,
                           const xdit_tensor* key_mask, const xdit_tensor* bias, double scale, const xdit_tensor* out,
                           const xdit_tensor* lse) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        AttentionArgs a;
        a.q = check_tensor(q, "q");
        a.k = check_tensor(k, "k");
        a.v = check_tensor(v, "v");
        a.out = check_tensor(out, "out");
        require_float(a.q, "q");
        for (auto [t, name] : {std::pair{&a.k, "k"}, {&a.v, "v"}, {&a.out, "out"}}) require_same_dtype(*t, name, a.q, "q");
        if (a.q.rank != 4) invalid(a.q.describe("q") + ": expected [B, Sq, H, D]");
        const int64_t batch = a.q.shape[0], sq = a.q.shape[1], heads = a.q.shape[2], d = a.q.shape[3];
        if (a.k.rank != 4 || a.k.shape[0] != batch || a.k.shape[2] != heads || a.k.shape[3] != d)
            invalid(a.k.describe("k") + " does not match " + a.q.describe("q") + ": expected [" + std::to_string(batch) +
                    ", Sk, " + std::to_string(heads) + ", " + std::to_string(d) + "]");
        const int64_t sk = a.k.shape[1];
        if (a.v.rank != 4 || a.v.shape[0] != batch || a.v.shape[1] != sk || a.v.shape[2] != heads)
            invalid(a.v.describe("v") + " does not match " + a.k.describe("k") + ": expected [" + std::to_string(batch) +
                    ", " + std::to_string(sk) + ", " + std::to_string(heads) + ", Dv]");
        const int64_t dv = a.v.shape[3];
        require_shape(a.out, "out", {batch, sq, heads, dv});
        for (auto [t, name] : {std::pair{&a.q, "q"}, {&a.k, "k"}, {&a.v, "v"}, {&a.out, "out"}})
            require_unit_inner_stride(*t, name);
        require_writable(a.out, "out");
        if (!std::isfinite(scale)) invalid("scale must be finite");
        a.scale = static_cast<float>(scale);
        a.key_mask = optional_tensor(key_mask, "key_mask");
        if (a.key_mask) {
            if (a.key_mask->dtype != XDIT_DTYPE_BOOL) invalid(a.key_mask->describe("key_mask") + ": expected bool");
            require_shape(*a.key_mask, "key_mask", {batch, sk});
        }
        a.bias = optional_tensor(bias, "bias");
        if (a.bias) {
            if (a.bias->dtype != a.q.dtype && a.bias->dtype != XDIT_DTYPE_F32)
                invalid(a.bias->describe("bias") + ": expected the dtype of q or f32");
            require_shape(*a.bias, "bias", {batch, heads, sq, sk});
        }
        a.lse = optional_tensor(lse, "lse");
        if (a.lse) {
            if (a.lse->dtype != XDIT_DTYPE_F32) invalid(a.lse->describe("lse") + ": expected f32");
            require_shape(*a.lse, "lse", {batch, heads, sq});
            require_writable(*a.lse, "lse");
        }
        if (a.out.numel() == 0 && !(a.lse && a.lse->numel() > 0)) return;
        c.backend().attention(a);
    });
}

xdit_status xdit_attention_merge(xdit_context* context, const xdit_tensor* out_a, const xdit_tensor* lse_a,
                                 const xdit_tensor* out_b, const xdit_tensor* lse_b, const xdit_tensor* out,
                                 const xdit_tensor* lse) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        MergeArgs a;
        a.out_a = check_tensor(out_a, "out_a");
        a.out_b = check_tensor(out_b, "out_b");
        a.out = check_tensor(out, "out");
        a.lse_a = check_tensor(lse_a, "lse_a");
        a.lse_b = check_tensor(lse_b, "lse_b");
        a.lse = check_tensor(lse, "lse");
        require_float(a.out_a, "out_a");
        if (a.out_a.rank != 4) invalid(a.out_a.describe("out_a") + ": expected [B, S, H, D]");
        for (auto [t, name] : {std::pair{&a.out_b, "out_b"}, {&a.out, "out"}}) {
            require_same_dtype(*t, name, a.out_a, "out_a");
            require_same_shape(*t, name, a.out_a, "out_a");
        }
        const int64_t b = a.out_a.shape[0], s = a.out_a.shape[1], h = a.out_a.shape[2];
        for (auto [t, name] : {std::pair{&a.lse_a, "lse_a"}, {&a.lse_b, "lse_b"}, {&a.lse, "lse"}}) {
            if (t->dtype != XDIT_DTYPE_F32) invalid(t->describe(name) + ": expected f32");
            require_shape(*t, name, {b, h, s});
        }
        require_writable(a.out, "out");
        require_writable(a.lse, "lse");
        if (a.out.numel() > 0) c.backend().attention_merge(a);
    });
}

xdit_status xdit_rope(xdit_context* context, const xdit_tensor* x, const xdit_tensor* cos, const xdit_tensor* sin,
                      int32_t interleaved, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        RopeArgs a;
        a.x = check_tensor(x, "x");
        a.cos = check_tensor(cos, "cos");
        a.sin = check_tensor(sin, "sin");
        a.out = check_tensor(out, "out");
        require_float(a.x, "x");
        require_same_dtype(a.x, "x", a.out, "out");
        for (auto [t, name] : {std::pair{&a.cos, "cos"}, {&a.sin, "sin"}, {&a.out, "out"}}) require_same_shape(*t, name, a.x, "x");
        for (auto [t, name] : {std::pair{&a.cos, "cos"}, {&a.sin, "sin"}})
            if (t->dtype != a.x.dtype && t->dtype != XDIT_DTYPE_F32)
                invalid(t->describe(name) + ": expected the dtype of x or f32");
        if (a.x.rank < 1 || a.x.dim(-1) % 2 != 0) invalid(a.x.describe("x") + ": the last dimension must be even");
        if (interleaved != 0 && interleaved != 1) invalid("interleaved must be 0 or 1");
        a.interleaved = interleaved == 1;
        require_writable(a.out, "out");
        if (a.x.numel() > 0) c.backend().rope(a);
    });
}

xdit_status xdit_conv2d(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight, const xdit_tensor* bias,
                        int32_t stride_h, int32_t stride_w, int32_t pad_h, int32_t pad_w, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        ConvArgs a;
        a.x = check_tensor(x, "x");
        a.weight = check_tensor(weight, "weight");
        a.out = check_tensor(out, "out");
        require_float(a.x, "x");
        require_same_dtype(a.weight, "weight", a.x, "x");
        require_same_dtype(a.out, "out", a.x, "x");
        if (a.x.rank != 4) invalid(a.x.describe("x") + ": expected [N, Cin, H, W]");
        if (a.weight.rank != 4 || a.weight.shape[1] != a.x.shape[1])
            invalid(a.weight.describe("weight") + " does not match " + a.x.describe("x") + ": expected [Cout, " +
                    std::to_string(a.x.shape[1]) + ", kh, kw]");
        if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
            invalid("strides must be >= 1 and padding >= 0, got stride " + std::to_string(stride_h) + "x" +
                    std::to_string(stride_w) + ", padding " + std::to_string(pad_h) + "x" + std::to_string(pad_w));
        const int64_t kh = a.weight.shape[2], kw = a.weight.shape[3];
        const int64_t ho = (a.x.shape[2] + 2 * pad_h - kh) / stride_h + 1;
        const int64_t wo = (a.x.shape[3] + 2 * pad_w - kw) / stride_w + 1;
        if (a.x.shape[2] + 2 * pad_h < kh || a.x.shape[3] + 2 * pad_w < kw)
            invalid(a.x.describe("x") + " is smaller than the " + std::to_string(kh) + "x" + std::to_string(kw) +
                    " kernel with padding " + std::to_string(pad_h) + "x" + std::to_string(pad_w));
        require_shape(a.out, "out", {a.x.shape[0], a.weight.shape[0], ho, wo});
        require_writable(a.out, "out");
        a.bias = optional_tensor(bias, "bias");
        if (a.bias) {
            require_same_dtype(*a.bias, "bias", a.x, "x");
            require_shape(*a.bias, "bias", {a.weight.shape[0]});
        }
        a.stride_h = stride_h;
        a.stride_w = stride_w;
        a.pad_h = pad_h;
        a.pad_w = pad_w;
        if (a.out.numel() > 0) c.backend().conv2d(a);
    });
}

}  // extern "C"
