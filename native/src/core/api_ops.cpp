// C entry points of the general ops: fill, copy, pointwise maps, reductions, softmax and GEMM.
#include <string>

#include "api_guard.h"
#include "context.h"
#include "dtype.h"
#include "gemm_problem.h"
#include "ops.h"
#include "tensor_desc.h"

namespace xdit {
namespace {

bool valid_unary(int32_t op) { return op >= XDIT_UNARY_GELU_TANH && op <= XDIT_UNARY_COS; }

bool is_activation(int32_t op) {
    return op == XDIT_UNARY_GELU_TANH || op == XDIT_UNARY_GELU_ERF || op == XDIT_UNARY_SILU;
}

// Validates a pointwise map: float operands of one dtype and one shape, an output that does not
// overlap itself. Returns false when there is nothing to compute.
bool prepare_map(MapOp& op, const xdit_tensor* const* inputs, const char* const* names, const xdit_tensor* out) {
    op.out = check_tensor(out, "out");
    require_float(op.out, "out");
    for (int i = 0; i < op.arity; ++i) {
        op.inputs[i] = check_tensor(inputs[i], names[i]);
        require_same_dtype(op.inputs[i], names[i], op.out, "out");
        require_same_shape(op.inputs[i], names[i], op.out, "out");
    }
    require_writable(op.out, "out");
    return op.out.numel() > 0;
}

void run_map(xdit_context* context, MapOp op, std::initializer_list<const xdit_tensor*> inputs,
             std::initializer_list<const char*> names, const xdit_tensor* out) {
    Context& c = context_of(context);
    op.arity = static_cast<int>(inputs.size());
    if (prepare_map(op, inputs.begin(), names.begin(), out)) c.backend().map(op);
}

// The checks of xdit_copy and xdit_copy_from: one shape, a convertible dtype pair, a writable output.
void check_copy(const TensorDesc& src, const TensorDesc& out) {
    require_same_shape(src, "src", out, "out");
    if (dtype_is_float(src.dtype) && !dtype_is_float(out.dtype))
        invalid(src.describe("src") + " cannot be converted to " + out.describe("out") +
                ": float to integer conversion is not supported");
    require_writable(out, "out");
}

}  // namespace
}  // namespace xdit

using namespace xdit;

extern "C" {

xdit_status xdit_fill(xdit_context* context, const xdit_tensor* out, double value) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc o = check_tensor(out, "out");
        if (o.numel() == 0) return;
        c.backend().fill(o, value);
    });
}

xdit_status xdit_copy(xdit_context* context, const xdit_tensor* src, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc s = check_tensor(src, "src");
        const TensorDesc o = check_tensor(out, "out");
        check_copy(s, o);
        if (o.numel() == 0) return;
        c.backend().copy(s, o);
    });
}

xdit_status xdit_copy_from(xdit_context* context, xdit_context* source, const xdit_tensor* src, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        Context& from = context_of(source);
        const TensorDesc s = check_tensor(src, "src");
        const TensorDesc o = check_tensor(out, "out");
        check_copy(s, o);
        if (o.numel() == 0) return;
        c.backend().copy_from(from.backend(), s, o);
    });
}

xdit_status xdit_binary(xdit_context* context, int32_t op, const xdit_tensor* a, const xdit_tensor* b,
                        const xdit_tensor* out) {
    return guard(__func__, [&] {
        if (op < XDIT_BINARY_ADD || op > XDIT_BINARY_MAX) invalid("unknown binary op " + std::to_string(op));
        MapOp m;
        m.kind = MapKind::Binary;
        m.code = op;
        run_map(context, m, {a, b}, {"a", "b"}, out);
    });
}

xdit_status xdit_unary(xdit_context* context, int32_t op, const xdit_tensor* x, const xdit_tensor* out) {
    return guard(__func__, [&] {
        if (!valid_unary(op)) invalid("unknown unary op " + std::to_string(op));
        MapOp m;
        m.kind = MapKind::Unary;
        m.code = op;
        run_map(context, m, {x}, {"x"}, out);
    });
}

xdit_status xdit_affine(xdit_context* context, const xdit_tensor* x, double alpha, double beta, const xdit_tensor* out) {
    return guard(__func__, [&] {
        MapOp m;
        m.kind = MapKind::Affine;
        m.p0 = alpha;
        m.p1 = beta;
        run_map(context, m, {x}, {"x"}, out);
    });
}

xdit_status xdit_clamp(xdit_context* context, const xdit_tensor* x, double low, double high, const xdit_tensor* out) {
    return guard(__func__, [&] {
        if (!(low <= high)) invalid("clamp bounds [" + std::to_string(low) + ", " + std::to_string(high) + "] are empty");
        MapOp m;
        m.kind = MapKind::Clamp;
        m.p0 = low;
        m.p1 = high;
        run_map(context, m, {x}, {"x"}, out);
    });
}

xdit_status xdit_lerp(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b, double weight,
                      const xdit_tensor* out) {
    return guard(__func__, [&] {
        MapOp m;
        m.kind = MapKind::Lerp;
        m.p0 = weight;
        run_map(context, m, {a, b}, {"a", "b"}, out);
    });
}

xdit_status xdit_add_mul(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b, const xdit_tensor* c,
                         const xdit_tensor* out) {
    return guard(__func__, [&] {
        MapOp m;
        m.kind = MapKind::AddMul;
        run_map(context, m, {a, b, c}, {"a", "b", "c"}, out);
    });
}

xdit_status xdit_gated_activation(xdit_context* context, int32_t op, const xdit_tensor* gate, const xdit_tensor* up,
                                  const xdit_tensor* out) {
    return guard(__func__, [&] {
        if (!is_activation(op)) invalid("gated activation needs GELU_TANH, GELU_ERF or SILU, got op " + std::to_string(op));
        MapOp m;
        m.kind = MapKind::Gated;
        m.code = op;
        run_map(context, m, {gate, up}, {"gate", "up"}, out);
    });
}

xdit_status xdit_reduce_abs_sum(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b,
                                const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc ta = check_tensor(a, "a");
        require_float(ta, "a");
        TensorDesc tb;
        if (b != nullptr) {
            tb = check_tensor(b, "b");
            require_same_dtype(ta, "a", tb, "b");
            require_same_shape(ta, "a", tb, "b");
        }
        const TensorDesc o = check_tensor(out, "out");
        if (o.dtype != XDIT_DTYPE_F32 || o.rank != 0) invalid(o.describe("out") + ": expected an f32 scalar (rank 0)");
        c.backend().reduce_abs_sum(ta, b ? &tb : nullptr, o);
    });
}

xdit_status xdit_softmax(xdit_context* context, const xdit_tensor* x, const xdit_tensor* out) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const TensorDesc tx = check_tensor(x, "x");
        const TensorDesc o = check_tensor(out, "out");
        require_float(tx, "x");
        require_same_dtype(tx, "x", o, "out");
        require_same_shape(tx, "x", o, "out");
        if (tx.rank < 1) invalid(tx.describe("x") + ": softmax needs rank >= 1");
        require_writable(o, "out");
        if (o.numel() == 0) return;
        c.backend().softmax(tx, o);
    });
}

xdit_status xdit_gemm(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b, const xdit_tensor* bias,
                      const xdit_tensor* out, int32_t epilogue) {
    return guard(__func__, [&] {
        Context& c = context_of(context);
        const GemmProblem problem = make_gemm_problem(a, b, bias, out, epilogue);
        if (problem.m == 0 || problem.n == 0 || problem.batch_count() == 0) return;
        c.backend().gemm(problem);
    });
}

}  // extern "C"
