#include "gemm_problem.h"

#include <string>

#include "dtype.h"
#include "error.h"

namespace xdit {

namespace {

std::string strides_string(const TensorDesc& t) {
    std::string s = "[";
    for (int i = 0; i < t.rank; ++i) s += (i ? ", " : "") + std::to_string(t.strides[i]);
    return s + "]";
}

// Reads the inner two dims of `t` as a rows × cols matrix, row-major or transposed.
MatrixOperand matrix_operand(const TensorDesc& t, const char* name, bool allow_transposed) {
    const int64_t rows = t.dim(-2), cols = t.dim(-1);
    const int64_t row_stride = t.stride(-2), col_stride = t.stride(-1);
    MatrixOperand m;
    m.data = t.data;
    if ((cols <= 1 || col_stride == 1) && (rows <= 1 || row_stride >= cols)) {
        m.leading_dimension = rows <= 1 ? (cols > 0 ? cols : 1) : row_stride;
        return m;
    }
    if (allow_transposed && (rows <= 1 || row_stride == 1) && (cols <= 1 || col_stride >= rows)) {
        m.transposed = true;
        m.leading_dimension = cols <= 1 ? (rows > 0 ? rows : 1) : col_stride;
        return m;
    }
    invalid(t.describe(name) + ": strides " + strides_string(t) + " are not " +
            (allow_transposed ? "row-major or transposed" : "row-major") + " in the last two dimensions");
}

}  // namespace

int64_t GemmProblem::batch_count() const {
    int64_t count = 1;
    for (int i = 0; i < batch_rank; ++i) count *= batch_shape[i];
    return count;
}

void GemmProblem::batch_offsets(int64_t index, int64_t* a_offset, int64_t* b_offset, int64_t* out_offset) const {
    int64_t ao = 0, bo = 0, oo = 0;
    for (int i = batch_rank - 1; i >= 0; --i) {
        const int64_t coordinate = index % batch_shape[i];
        index /= batch_shape[i];
        ao += coordinate * a_batch_strides[i];
        bo += coordinate * b_batch_strides[i];
        oo += coordinate * out_batch_strides[i];
    }
    *a_offset = ao;
    *b_offset = bo;
    *out_offset = oo;
}

bool GemmProblem::uniform_batch(int64_t* a_stride, int64_t* b_stride, int64_t* out_stride) const {
    int64_t shape[XDIT_MAX_RANK], as[XDIT_MAX_RANK], bs[XDIT_MAX_RANK], os[XDIT_MAX_RANK];
    for (int i = 0; i < batch_rank; ++i) {
        shape[i] = batch_shape[i];
        as[i] = a_batch_strides[i];
        bs[i] = b_batch_strides[i];
        os[i] = out_batch_strides[i];
    }
    int64_t* strides[3] = {as, bs, os};
    const int rank = coalesce_dims(batch_rank, shape, strides, 3);
    if (rank != 1) return false;
    *a_stride = as[0];
    *b_stride = bs[0];
    *out_stride = os[0];
    return true;
}

GemmProblem GemmProblem::folded() const {
    if (batch_rank == 0 || a.transposed) return *this;
    int64_t a_stride, b_stride, out_stride;
    if (!uniform_batch(&a_stride, &b_stride, &out_stride)) return *this;
    if (b_stride != 0 || a_stride != m * a.leading_dimension || out_stride != m * out.leading_dimension) return *this;
    GemmProblem f = *this;
    f.m = m * batch_count();
    f.batch_rank = 0;
    return f;
}

TensorDesc GemmProblem::out_desc() const {
    TensorDesc d;
    d.data = out.data;
    d.dtype = dtype;
    d.rank = batch_rank + 2;
    for (int i = 0; i < batch_rank; ++i) {
        d.shape[i] = batch_shape[i];
        d.strides[i] = out_batch_strides[i];
    }
    d.shape[batch_rank] = m;
    d.strides[batch_rank] = out.leading_dimension;
    d.shape[batch_rank + 1] = n;
    d.strides[batch_rank + 1] = 1;
    return d;
}

GemmProblem make_gemm_problem(const xdit_tensor* a_in, const xdit_tensor* b_in, const xdit_tensor* bias_in,
                              const xdit_tensor* out_in, int32_t epilogue) {
    const TensorDesc a = check_tensor(a_in, "a");
    const TensorDesc b = check_tensor(b_in, "b");
    const TensorDesc out = check_tensor(out_in, "out");
    require_float(a, "a");
    require_same_dtype(a, "a", b, "b");
    require_same_dtype(a, "a", out, "out");
    if (epilogue < XDIT_EPILOGUE_NONE || epilogue > XDIT_EPILOGUE_SILU)
        invalid("unknown epilogue " + std::to_string(epilogue));
    if (a.rank < 2) invalid(a.describe("a") + ": expected rank >= 2 ([..., M, K])");
    if (b.rank != 2 && b.rank != a.rank)
        invalid(b.describe("b") + ": expected rank 2 ([N, K]) or the rank of " + a.describe("a"));
    if (out.rank != a.rank) invalid(out.describe("out") + ": expected the rank of " + a.describe("a"));

    GemmProblem p;
    p.dtype = a.dtype;
    p.epilogue = epilogue;
    p.m = a.dim(-2);
    p.k = a.dim(-1);
    p.n = b.dim(-2);
    if (b.dim(-1) != p.k)
        invalid(a.describe("a") + " and " + b.describe("b") + ": inner dimensions differ (" + std::to_string(p.k) +
                " vs " + std::to_string(b.dim(-1)) + "); out = a·bᵀ needs a [..., M, K] and b [N, K]");
    if (out.dim(-2) != p.m || out.dim(-1) != p.n)
        invalid(out.describe("out") + " does not match " + a.describe("a") + " · " + b.describe("b") +
                "ᵀ: expected [..., " + std::to_string(p.m) + ", " + std::to_string(p.n) + "]");

    p.batch_rank = a.rank - 2;
    for (int i = 0; i < p.batch_rank; ++i) {
        if (out.shape[i] != a.shape[i])
            invalid(out.describe("out") + " and " + a.describe("a") + " must have the same batch dimensions");
        if (b.rank == a.rank && b.shape[i] != a.shape[i])
            invalid(b.describe("b") + " and " + a.describe("a") + " must have the same batch dimensions");
        p.batch_shape[i] = a.shape[i];
        p.a_batch_strides[i] = a.strides[i];
        p.b_batch_strides[i] = b.rank == a.rank ? b.strides[i] : 0;
        p.out_batch_strides[i] = out.strides[i];
    }

    p.a = matrix_operand(a, "a", true);
    p.b = matrix_operand(b, "b", true);
    p.out = matrix_operand(out, "out", false);
    require_writable(out, "out");

    if (bias_in != nullptr) {
        const TensorDesc bias = check_tensor(bias_in, "bias");
        require_same_dtype(a, "a", bias, "bias");
        if (bias.rank != 1 || bias.shape[0] != p.n)
            invalid(bias.describe("bias") + ": expected [" + std::to_string(p.n) + "] for " + out.describe("out"));
        if (p.n > 1 && bias.strides[0] != 1) invalid(bias.describe("bias") + ": must be contiguous");
        p.bias = bias.data;
    }
    return p;
}

}  // namespace xdit
