/*
 * xdit.h — the one public C ABI of libxdit_native.
 *
 * C99, no C++ types. Every entry point returns an xdit_status; on failure the message is kept in a
 * thread-local string read by xdit_last_error(). Nothing here aborts the calling process.
 *
 * Tensors cross the boundary as a plain xdit_tensor descriptor (data pointer, dtype, rank, shape,
 * strides in elements). The caller owns the memory (normally an xdit_buffer of the same context);
 * kernels state which layouts they accept and reject the others with XDIT_STATUS_INVALID_ARGUMENT.
 *
 * All work issued on a context is ordered on that context's stream: an op returns once the work is
 * enqueued (CPU contexts run it before returning). Copies to host memory synchronise.
 *
 * The managed bindings (managed/XDit.Native/NativeMethods.g.cs) are generated from this file by
 * bindings/generate.py; regenerate them after every change.
 */
#ifndef XDIT_XDIT_H
#define XDIT_XDIT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define XDIT_API __declspec(dllexport)
#else
#define XDIT_API __attribute__((visibility("default")))
#endif

/* Bumped on every change of a signature, struct or enum value below. */
#define XDIT_ABI_VERSION 9

/* The largest tensor rank a descriptor carries. */
#define XDIT_MAX_RANK 6

typedef enum xdit_status {
    XDIT_STATUS_OK = 0,
    XDIT_STATUS_INVALID_ARGUMENT = 1, /* bad shape, dtype, stride, null pointer or handle */
    XDIT_STATUS_OUT_OF_MEMORY = 2,    /* host or device allocation failed */
    XDIT_STATUS_UNSUPPORTED = 3,      /* valid request this build or backend cannot serve */
    XDIT_STATUS_UNAVAILABLE = 4,      /* a device or optional library is not present */
    XDIT_STATUS_DEVICE_ERROR = 5,     /* the CUDA runtime or a CUDA library reported an error */
    XDIT_STATUS_TIMEOUT = 6,          /* a bounded wait expired */
    XDIT_STATUS_INTERNAL = 7          /* a bug in this library: the message says where */
} xdit_status;

typedef enum xdit_dtype {
    XDIT_DTYPE_F32 = 0,
    XDIT_DTYPE_F16 = 1,
    XDIT_DTYPE_BF16 = 2,
    XDIT_DTYPE_I32 = 3,
    XDIT_DTYPE_I64 = 4,
    XDIT_DTYPE_BOOL = 5 /* one byte, 0 or 1 */
} xdit_dtype;

typedef enum xdit_device_kind {
    XDIT_DEVICE_CPU = 0,
    XDIT_DEVICE_CUDA = 1
} xdit_device_kind;

/* What a GEMM applies to each output element after adding the bias. */
typedef enum xdit_epilogue {
    XDIT_EPILOGUE_NONE = 0,
    XDIT_EPILOGUE_GELU_TANH = 1, /* 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
    XDIT_EPILOGUE_GELU_ERF = 2,  /* 0.5·x·(1 + erf(x/√2)) */
    XDIT_EPILOGUE_SILU = 3       /* x·sigmoid(x) */
} xdit_epilogue;

/* Which GEMM a CPU context uses. */
typedef enum xdit_cpu_gemm {
    XDIT_CPU_GEMM_AUTO = 0,     /* OpenBLAS when it can be loaded, else the built-in kernel */
    XDIT_CPU_GEMM_OPENBLAS = 1, /* OpenBLAS or an UNAVAILABLE error */
    XDIT_CPU_GEMM_BUILTIN = 2   /* the built-in blocked kernel */
} xdit_cpu_gemm;

/* Which instruction set the CPU kernels that are written for one (attention's tiles) use. */
typedef enum xdit_cpu_isa {
    XDIT_CPU_ISA_AUTO = 0,     /* AVX2 + FMA when the processor has them, else baseline x86-64 */
    XDIT_CPU_ISA_AVX2 = 1,     /* AVX2 + FMA or an UNAVAILABLE error */
    XDIT_CPU_ISA_BASELINE = 2  /* plain C++ kernels: any x86-64 processor, for checks and comparisons */
} xdit_cpu_isa;

typedef enum xdit_binary_op {
    XDIT_BINARY_ADD = 0,
    XDIT_BINARY_MUL = 1,
    XDIT_BINARY_SUB = 2,
    XDIT_BINARY_DIV = 3,
    XDIT_BINARY_MAX = 4
} xdit_binary_op;

/* Elementwise functions of one tensor. */
typedef enum xdit_unary_op {
    XDIT_UNARY_GELU_TANH = 0, /* as XDIT_EPILOGUE_GELU_TANH */
    XDIT_UNARY_GELU_ERF = 1,  /* as XDIT_EPILOGUE_GELU_ERF */
    XDIT_UNARY_SILU = 2,
    XDIT_UNARY_EXP = 3,
    XDIT_UNARY_ABS = 4,
    XDIT_UNARY_NEG = 5,
    XDIT_UNARY_SIN = 6, /* evaluated in double and rounded once (the sinusoidal timestep projection) */
    XDIT_UNARY_COS = 7
} xdit_unary_op;

/* A strided view of memory. Strides count elements, not bytes, and may be zero (broadcast) for
 * inputs. A rank-0 descriptor is a scalar. Shape and stride entries at index >= rank are ignored. */
typedef struct xdit_tensor {
    void* data;
    int32_t dtype; /* xdit_dtype */
    int32_t rank;
    int64_t shape[XDIT_MAX_RANK];
    int64_t strides[XDIT_MAX_RANK];
} xdit_tensor;

/* How to create a context. Zero-initialised options mean: CPU, all hardware threads, automatic
 * GEMM and instruction-set choice, no memory limit. */
typedef struct xdit_context_options {
    int32_t device_kind;  /* xdit_device_kind */
    int32_t device_index; /* CUDA ordinal; 0 for the CPU */
    int32_t num_threads;  /* CPU threads this context's kernels may use; 0 = every hardware thread */
    int32_t cpu_gemm;     /* xdit_cpu_gemm */
    int32_t cpu_isa;      /* xdit_cpu_isa */
    uint64_t memory_limit_bytes; /* allocations that would hold more than this fail; 0 = no limit */
} xdit_context_options;

/* Byte counts of a context's caching allocator. */
typedef struct xdit_allocator_stats {
    uint64_t bytes_in_use;      /* held by live buffers */
    uint64_t peak_bytes_in_use; /* the most ever held at once since creation or the last reset */
    uint64_t bytes_cached;      /* freed by buffers, kept for reuse, not yet returned to the system */
    uint64_t bytes_reserved;    /* in use + cached: what the context holds from the system */
    uint64_t allocation_count;  /* buffers handed out since creation */
    uint64_t cache_hit_count;   /* of those, served from the cache */
} xdit_allocator_stats;

/* What this build of the library carries and what it found on this machine. */
typedef struct xdit_build_info {
    uint32_t abi_version;
    int32_t cuda_compiled;          /* 1 if the CUDA backend was compiled in */
    int32_t cuda_runtime_version;   /* CUDART_VERSION the library was built with, 0 without CUDA */
    int32_t cuda_device_count;      /* CUDA devices visible now (0 without GPU or driver) */
    int32_t openblas_loaded;        /* 1 if libopenblas was found and is used for CPU GEMM */
    int32_t hardware_threads;       /* logical CPUs of this machine */
} xdit_build_info;

/* Opaque handles. A buffer keeps its context alive: destroying a context that still has live
 * buffers releases the caller's reference and the context is freed with its last buffer. */
typedef struct xdit_context xdit_context;
typedef struct xdit_buffer xdit_buffer;
typedef struct xdit_graph xdit_graph;
typedef struct xdit_comm xdit_comm;
typedef struct xdit_comm_request xdit_comm_request;
typedef struct xdit_mark xdit_mark;

/* ---- library ---------------------------------------------------------------------------- */

XDIT_API uint32_t xdit_abi_version(void);

/* The message of the last failed call on this thread ("" if none). Owned by the library; valid
 * until the next call on the same thread. */
XDIT_API const char* xdit_last_error(void);

XDIT_API xdit_status xdit_get_build_info(xdit_build_info* info);

/* Sizes and field offsets of the structs above, as this compiler laid them out (layout tests). */
XDIT_API xdit_status xdit_abi_struct_size(const char* struct_name, uint64_t* size);
XDIT_API xdit_status xdit_abi_field_offset(const char* struct_name, const char* field_name, uint64_t* offset);

/* ---- contexts --------------------------------------------------------------------------- */

/* A context is one device with its stream, allocator and library handles. Creating a CUDA context
 * on a machine without a usable device fails with XDIT_STATUS_UNAVAILABLE; asking for OpenBLAS where
 * it cannot be loaded fails the same way. */
XDIT_API xdit_status xdit_context_create(const xdit_context_options* options, xdit_context** out_context);
XDIT_API xdit_status xdit_context_destroy(xdit_context* context);

/* Waits until every piece of work issued on the context has finished. */
XDIT_API xdit_status xdit_context_synchronize(xdit_context* context);

/* A point in the context's work, for timing it: a CUDA event recorded on the context's stream, or on
 * a CPU context (whose work is done when each call returns) the host's monotonic clock. */
XDIT_API xdit_status xdit_context_mark(xdit_context* context, xdit_mark** out_mark);

/* Milliseconds of work between two marks of one context, waiting for the later one to be reached. */
XDIT_API xdit_status xdit_mark_elapsed(const xdit_mark* start, const xdit_mark* end, double* milliseconds);
XDIT_API xdit_status xdit_mark_destroy(xdit_mark* mark);

/* The options the context runs with (num_threads resolved, cpu_gemm and cpu_isa as chosen). */
XDIT_API xdit_status xdit_context_get_options(xdit_context* context, xdit_context_options* options);
XDIT_API xdit_status xdit_context_allocator_stats(xdit_context* context, xdit_allocator_stats* stats);

/* Returns the allocator's cached blocks to the system (after synchronising). */
XDIT_API xdit_status xdit_context_release_cached(xdit_context* context);

/* Sets peak_bytes_in_use to the current bytes_in_use. */
XDIT_API xdit_status xdit_context_reset_peak(xdit_context* context);

/* ---- graphs ----------------------------------------------------------------------------- */

/* Captures a sequence of the context's work once and replays it: on CUDA a CUDA graph of the
 * context's stream, on the CPU the recorded op calls. Between xdit_graph_begin and xdit_graph_end
 * nothing runs: ops are checked and captured, buffers allocated meanwhile belong to the graph (each
 * launch writes them again, so they stay reserved for it, even when freed, until the graph is
 * destroyed), and host data given to xdit_buffer_write is copied into the graph and written again at
 * every launch. Reading memory back, synchronising, timing marks and copies from other contexts are
 * refused while capturing (XDIT_STATUS_UNSUPPORTED), and so is anything a backend cannot capture.
 * A launch computes what the captured calls would compute on the memory's contents at that point in
 * the context's work: inputs that change between launches are written into buffers allocated before
 * the capture. xdit_graph_end always leaves capture mode; when the capture failed it returns the
 * error and no graph. Destroying a graph waits for its launches (destroy it while its context is not
 * capturing another). */
XDIT_API xdit_status xdit_graph_begin(xdit_context* context);
XDIT_API xdit_status xdit_graph_end(xdit_context* context, xdit_graph** out_graph);
XDIT_API xdit_status xdit_graph_launch(xdit_graph* graph);
/* Kernels, copies and library calls in the graph. */
XDIT_API xdit_status xdit_graph_node_count(const xdit_graph* graph, int64_t* count);
XDIT_API xdit_status xdit_graph_destroy(xdit_graph* graph);

/* ---- buffers ---------------------------------------------------------------------------- */

/* Device (or host, for CPU contexts) memory from the context's caching allocator, aligned to 256
 * bytes. Contents are undefined. A zero-byte buffer is valid and has a null data pointer. */
XDIT_API xdit_status xdit_buffer_alloc(xdit_context* context, uint64_t bytes, xdit_buffer** out_buffer);
XDIT_API xdit_status xdit_buffer_free(xdit_buffer* buffer);

/* A buffer over memory the caller owns, used without a copy: host memory on a CPU context (a
 * memory-mapped weight file, for example), or device memory of the context's own device on a CUDA
 * context (another context's weights; anything else answers XDIT_STATUS_UNSUPPORTED). The library never
 * frees or writes it through this buffer's own calls; the caller keeps it valid, and ordered with the
 * work that reads it, until the buffer is freed. Not counted by the allocator statistics. */
XDIT_API xdit_status xdit_buffer_wrap(xdit_context* context, void* data, uint64_t bytes, xdit_buffer** out_buffer);
XDIT_API xdit_status xdit_buffer_data(xdit_buffer* buffer, void** out_data);
XDIT_API xdit_status xdit_buffer_size(xdit_buffer* buffer, uint64_t* out_bytes);

/* Byte copies between a buffer and host memory; ranges are checked against the buffer's size. */
XDIT_API xdit_status xdit_buffer_write(xdit_buffer* buffer, uint64_t offset, const void* source, uint64_t bytes);
XDIT_API xdit_status xdit_buffer_read(xdit_buffer* buffer, uint64_t offset, void* destination, uint64_t bytes);
XDIT_API xdit_status xdit_buffer_memset(xdit_buffer* buffer, uint64_t offset, int32_t value, uint64_t bytes);

/* ---- ops ---------------------------------------------------------------------------------- */

/* out[...] = value, converted to out's dtype. Any strides. */
XDIT_API xdit_status xdit_fill(xdit_context* context, const xdit_tensor* out, double value);

/* out = src converted to out's dtype. Same shape; any strides on both sides (out must not
 * overlap itself). Float types convert among themselves with round-to-nearest-even; integer types
 * and bool among themselves and to float; float to integer is rejected. */
XDIT_API xdit_status xdit_copy(xdit_context* context, const xdit_tensor* src, const xdit_tensor* out);

/* xdit_copy where src is the memory of another context, `source` (an in-process rank's): ordered after
 * the work issued on `source` so far, and before any work issued there later, which may then overwrite
 * or free src — no host wait on either side. `context` runs the copy. CPU contexts copy from CPU
 * contexts; CUDA contexts from CUDA contexts on the same device or on a peer-accessible one; other
 * pairs answer XDIT_STATUS_UNSUPPORTED. */
XDIT_API xdit_status xdit_copy_from(xdit_context* context, xdit_context* source, const xdit_tensor* src,
                                    const xdit_tensor* out);

/* out = a (op) b, elementwise in fp32, for f32/f16/bf16 of one dtype. Same shape (broadcast with
 * zero strides in a or b); out may alias a or b exactly. */
XDIT_API xdit_status xdit_binary(xdit_context* context, int32_t op, const xdit_tensor* a, const xdit_tensor* b,
                                 const xdit_tensor* out);

/* out = epilogue(a · bᵀ + bias), fp32 accumulation.
 *   a [..., M, K], b [N, K] or [..., N, K] (same batch shape as a), bias [N] or NULL, out [..., M, N].
 *   One dtype for all operands: f32, f16 or bf16.
 *   The two inner dims of a and b may be row-major (unit last stride) or transposed (unit
 *   second-last stride); out must be row-major in its inner dims. Batch dims take any strides. */
XDIT_API xdit_status xdit_gemm(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b,
                               const xdit_tensor* bias, const xdit_tensor* out, int32_t epilogue);

/* ---- elementwise ------------------------------------------------------------------------
 * Float operands (f32/f16/bf16) of one dtype and one shape, computed in fp32; inputs broadcast
 * through zero strides, outputs take any non-overlapping layout and may alias an input exactly. */

/* out = op(x). */
XDIT_API xdit_status xdit_unary(xdit_context* context, int32_t op, const xdit_tensor* x, const xdit_tensor* out);

/* out = alpha·x + beta (a scale, a shift, or both). */
XDIT_API xdit_status xdit_affine(xdit_context* context, const xdit_tensor* x, double alpha, double beta,
                                 const xdit_tensor* out);

/* out = min(max(x, low), high). */
XDIT_API xdit_status xdit_clamp(xdit_context* context, const xdit_tensor* x, double low, double high,
                                const xdit_tensor* out);

/* out = a + weight·(b − a): classifier-free guidance is lerp(uncond, cond, scale). */
XDIT_API xdit_status xdit_lerp(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b, double weight,
                               const xdit_tensor* out);

/* out = a + b ⊙ c: the gated residual x + gate·y of the DiT blocks (gate broadcast). */
XDIT_API xdit_status xdit_add_mul(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b,
                                  const xdit_tensor* c, const xdit_tensor* out);

/* out = op(gate) ⊙ up: GEGLU (gate and up as two halves of one projection) and T5's gated GELU
 * (two projections). op is an xdit_unary_op activation. */
XDIT_API xdit_status xdit_gated_activation(xdit_context* context, int32_t op, const xdit_tensor* gate,
                                           const xdit_tensor* up, const xdit_tensor* out);

/* out (f32 scalar, rank 0) = Σ|a − b| over all elements, or Σ|a| when b is NULL, accumulated in
 * fp64: the relative-change measure of step caching is reduce(a, b) / reduce(a, NULL). */
XDIT_API xdit_status xdit_reduce_abs_sum(xdit_context* context, const xdit_tensor* a, const xdit_tensor* b,
                                         const xdit_tensor* out);

/* out = softmax(x) over the last dimension. */
XDIT_API xdit_status xdit_softmax(xdit_context* context, const xdit_tensor* x, const xdit_tensor* out);

/* ---- normalisation -----------------------------------------------------------------------
 * Statistics in fp32 over the last dimension C (layer/RMS norm) or over each group of channels
 * and all spatial positions (group norm). Every optional operand may be NULL. */

/* out = ((x − mean) / √(var + eps) · weight + bias) · (1 + scale) + shift. weight and bias are [C];
 * scale and shift have x's shape (broadcast views, e.g. [B, 1, C] expanded to [B, S, C]): the fused
 * adaLN modulation of DiT blocks. */
XDIT_API xdit_status xdit_layer_norm(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight,
                                     const xdit_tensor* bias, const xdit_tensor* scale, const xdit_tensor* shift,
                                     double eps, const xdit_tensor* out);

/* out = x / √(mean(x²) + eps) · weight (T5LayerNorm, the q/k norms of SD3.5 and Flux). */
XDIT_API xdit_status xdit_rms_norm(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight,
                                   double eps, const xdit_tensor* out);

/* x is [N, C, spatial...] (rank >= 2); groups divides C; weight and bias are [C]. */
XDIT_API xdit_status xdit_group_norm(xdit_context* context, const xdit_tensor* x, int32_t groups,
                                     const xdit_tensor* weight, const xdit_tensor* bias, double eps,
                                     const xdit_tensor* out);

/* A group norm split over ranks (the parallel VAE: feature-map rows on each rank) in two halves.
 * Statistics of this rank's part of x [N, C, ...]: out f32 [N, groups, 2] = (mean, Σ(x − mean)²) per
 * sample and group, accumulated in fp64 — the ranks all-gather them and merge (Chan et al.). */
XDIT_API xdit_status xdit_group_norm_stats(xdit_context* context, const xdit_tensor* x, int32_t groups,
                                           const xdit_tensor* out);

/* The group norm of x with given statistics: stats f32 [N, groups, 2] = (mean, 1/√(var + eps));
 * weight and bias [C] or NULL. With the statistics of the whole x it equals xdit_group_norm. */
XDIT_API xdit_status xdit_group_norm_apply(xdit_context* context, const xdit_tensor* x, int32_t groups,
                                           const xdit_tensor* stats, const xdit_tensor* weight,
                                           const xdit_tensor* bias, const xdit_tensor* out);

/* ---- attention ---------------------------------------------------------------------------- */

/* Scaled dot-product attention, non-causal, blocked with an online softmax (memory O(S·D), never
 * O(Sq·Sk)).
 *   q [B, Sq, H, D], k [B, Sk, H, D], v [B, Sk, H, Dv], out [B, Sq, H, Dv]: any strides with a unit
 *   stride on the last dim; one float dtype.
 *   key_mask: bool [B, Sk] (true = attend) or NULL; the keys and values of masked keys never reach the
 *   output (padding may hold anything, NaN included). bias: added to the scores, shape [B, H, Sq, Sk]
 *   (broadcast views allowed; T5's relative position bias) or NULL; q's dtype or f32.
 *   scale multiplies q·kᵀ (1/√D for the usual attention, 1 for T5).
 *   lse: f32 [B, H, Sq] = log Σₖ exp(score) per query, or NULL. A query whose keys are all masked
 *   gets a zero output and lse = −inf. */
XDIT_API xdit_status xdit_attention(xdit_context* context, const xdit_tensor* q, const xdit_tensor* k,
                                    const xdit_tensor* v, const xdit_tensor* key_mask, const xdit_tensor* bias,
                                    double scale, const xdit_tensor* out, const xdit_tensor* lse);

/* Merges two partial attentions over disjoint key sets into the attention over their union, in
 * fp32: out = (e^(lse_a−m)·out_a + e^(lse_b−m)·out_b) / (e^(lse_a−m) + e^(lse_b−m)), lse = m + log(...),
 * m = max(lse_a, lse_b). out_* [B, S, H, D], lse_* f32 [B, H, S]; out and lse may alias out_a and
 * lse_a (the ring accumulates in place). */
XDIT_API xdit_status xdit_attention_merge(xdit_context* context, const xdit_tensor* out_a, const xdit_tensor* lse_a,
                                          const xdit_tensor* out_b, const xdit_tensor* lse_b,
                                          const xdit_tensor* out, const xdit_tensor* lse);

/* ---- position ----------------------------------------------------------------------------- */

/* Rotary embedding applied to q or k: x, cos, sin, out of one shape [B, S, H, D] (cos/sin usually
 * broadcast views of [S, D] tables). interleaved = 1: pairs (2i, 2i+1) rotate together (Flux);
 * 0: halves (i, i + D/2) rotate together (rotate-half form). */
XDIT_API xdit_status xdit_rope(xdit_context* context, const xdit_tensor* x, const xdit_tensor* cos,
                               const xdit_tensor* sin, int32_t interleaved, const xdit_tensor* out);

/* ---- convolution -------------------------------------------------------------------------- */

/* 2-D convolution, zero padding, no dilation or groups: x [N, Cin, H, W], weight [Cout, Cin, kh, kw],
 * bias [Cout] or NULL, out [N, Cout, Ho, Wo] with Ho = (H + 2·pad_h − kh) / stride_h + 1 (same for
 * W). Lowered to GEMM over tiles of output pixels, so scratch memory stays bounded. */
XDIT_API xdit_status xdit_conv2d(xdit_context* context, const xdit_tensor* x, const xdit_tensor* weight,
                                 const xdit_tensor* bias, int32_t stride_h, int32_t stride_w, int32_t pad_h,
                                 int32_t pad_w, const xdit_tensor* out);

/* ---- communicators ------------------------------------------------------------------------ */

/* Open MPI, loaded at run time (libmpi.so.40, or XDIT_MPI_LIB): one rank per process, launched by
 * mpirun. The first call initialises MPI (thread level MULTIPLE, at least SERIALIZED) with
 * MPI_ERRORS_RETURN; without Open MPI it fails with XDIT_STATUS_UNAVAILABLE. Every collective is
 * bounded by timeout_seconds: a rank that fails, leaves or calls another collective makes the others
 * fail with XDIT_STATUS_TIMEOUT, after which the communicator refuses further calls. Buffers are host
 * memory, contiguous; sizes in bytes (at most 2^31 − 1 per message). Collective calls must be made by
 * every rank of the communicator in the same order. */
XDIT_API xdit_status xdit_comm_mpi_world(double timeout_seconds, xdit_comm** out_comm);

/* Finalises MPI if this library initialised it: the process's last MPI call, after every
 * communicator is destroyed. */
XDIT_API xdit_status xdit_comm_mpi_finalize(void);

/* The size of NCCL's unique id. */
#define XDIT_NCCL_ID_BYTES 128

/* NCCL, loaded at run time (XDIT_NCCL_LIB, else libnccl.so.2): one rank per GPU, over the device memory
 * of a CUDA context, its collectives ordered on that context's stream. One rank makes a unique id
 * (XDIT_NCCL_ID_BYTES bytes), every rank receives it by other means (an in-process or MPI broadcast),
 * then all call xdit_comm_nccl_init together. The same bounds as MPI: each call waits for its transfer
 * at most timeout_seconds, then aborts the communicator and fails with XDIT_STATUS_TIMEOUT. Split needs
 * NCCL 2.18 or newer. Without NCCL, or in a build without CUDA, XDIT_STATUS_UNAVAILABLE. */
XDIT_API xdit_status xdit_comm_nccl_unique_id(uint8_t* id, uint64_t id_bytes);
XDIT_API xdit_status xdit_comm_nccl_init(xdit_context* context, const uint8_t* id, uint64_t id_bytes, int32_t rank, int32_t size,
                                         double timeout_seconds, xdit_comm** out_comm);

/* The NCCL version as NCCL encodes it (2.21.5 is 22105), or UNAVAILABLE naming what was tried. */
XDIT_API xdit_status xdit_comm_nccl_version(int32_t* version);

XDIT_API xdit_status xdit_comm_destroy(xdit_comm* comm);
XDIT_API xdit_status xdit_comm_rank(const xdit_comm* comm, int32_t* rank);
XDIT_API xdit_status xdit_comm_size(const xdit_comm* comm, int32_t* size);

/* Collective: ranks with the same color form a new communicator, ordered by key (then by rank). */
XDIT_API xdit_status xdit_comm_split(xdit_comm* comm, int32_t color, int32_t key, xdit_comm** out_comm);

/* received = every rank's `bytes` of send, in rank order (size · bytes). */
XDIT_API xdit_status xdit_comm_all_gather(xdit_comm* comm, const void* send, void* received, int64_t bytes);

/* Chunk r (bytes_per_rank each) of send goes to rank r and arrives there as its chunk (this rank). */
XDIT_API xdit_status xdit_comm_all_to_all(xdit_comm* comm, const void* send, void* received, int64_t bytes_per_rank);

XDIT_API xdit_status xdit_comm_broadcast(xdit_comm* comm, void* data, int64_t bytes, int32_t root);

/* The ring step: received = the send of rank (rank − 1) mod size. */
XDIT_API xdit_status xdit_comm_shift(xdit_comm* comm, const void* send, void* received, int64_t bytes);

XDIT_API xdit_status xdit_comm_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer);
XDIT_API xdit_status xdit_comm_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer);

/* Non-blocking send and receive: they start the transfer and return; xdit_comm_request_wait
 * finishes it (bounded by the communicator's timeout). Until then a send's buffer must stay unchanged
 * and a receive's unread. Messages between two ranks match in the order they were posted, together
 * with xdit_comm_send / xdit_comm_receive. The request must not outlive its communicator. */
XDIT_API xdit_status xdit_comm_post_send(xdit_comm* comm, const void* data, int64_t bytes, int32_t peer,
                                         xdit_comm_request** out_request);
XDIT_API xdit_status xdit_comm_post_receive(xdit_comm* comm, void* data, int64_t bytes, int32_t peer,
                                            xdit_comm_request** out_request);
/* Waits for the transfer; waiting again after success returns at once. */
XDIT_API xdit_status xdit_comm_request_wait(xdit_comm_request* request);
/* Frees a request. One not waited for (or whose wait failed) may still be transferring: its buffer
 * must then never be reused. */
XDIT_API xdit_status xdit_comm_request_free(xdit_comm_request* request);
XDIT_API xdit_status xdit_comm_barrier(xdit_comm* comm);

#ifdef __cplusplus
}
#endif

#endif /* XDIT_XDIT_H */
