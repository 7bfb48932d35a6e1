/*
 * cuda_internal.h - shared internals of the CUDA backend (backend_cuda.cu, cuda_*.cu): the
 * backend's private state, error helpers, the one GEMM wrapper, the dtype helpers used by
 * every kernel, and the op entry points. Nothing outside core/cuda/ includes it: the rest of
 * the engine reaches this backend through its registry row (core/backend.c) and ops table.
 *
 * Design notes
 *  - One backend = one device, one non-blocking stream, one cuBLAS handle, one scratch buffer
 *    (im2col columns, attention logits) that grows rarely and is never freed per op.
 *  - Every CUDA/cuBLAS call is checked; a failure becomes "cudaErrorX: text (in what)" in the
 *    op's msg, and an unrecoverable (sticky) device error sets backend->device_lost.
 *  - Kernels are launched through EDM_LAUNCH so that the same sources also build on the host
 *    against tests/gpu/sim/cuda_sim.h (EDM_CUDA_SIM), a small CUDA emulator used to test the
 *    backend on machines without a GPU.
 *  - Activations are channels-last (NHWC); conv weights are used rearranged to OHWI, a
 *    copy made once per weight tensor (cuda_layout.cu).
 *  - Convolutions: im2col + cuBLAS (cuda_conv.cu); cuDNN's implicit GEMM (tf32/fp16/bf16,
 *    cuda_cudnn.cu, loaded at run time) only with EDM_CUDA_CONV=cudnn: slower on an H200 at
 *    batch 1 and 512 (bench/GPU_RESULTS.md, measured with the NCHW engine).
 *  - CUDA graphs (optional, EDM_CUDA_GRAPHS=1): every op folds its arguments into a running
 *    signature; a pass is learned, then captured, then replayed while it matches, and runs
 *    eagerly the moment it does not (cuda_graph.cu).
 *  - Environment: EDM_CUDA_GRAPHS=1 (graphs), EDM_CUDA_CONV=im2col|cudnn, EDM_CUDNN_PATH
 *    (libcudnn.so.9 to load), EDM_CUDA_SCRATCH_MB (scratch budget per op, default 512),
 *    EDM_CUDA_SYNC=1 (synchronize after each op, to name a faulting one), EDM_CUDA_DEBUG=1.
 */
#ifndef EDM_CUDA_INTERNAL_H
#define EDM_CUDA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "ops.h" /* C declarations (edm_backend_fail, the registry row): C linkage */
#ifdef __cplusplus
}
#endif

#if defined(__CUDACC__) || defined(EDM_CUDA_SIM)

#ifdef EDM_CUDA_SIM
#include "cuda_sim.h"
#else
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#endif

/* ---- launching ------------------------------------------------------------------------- */

#ifdef EDM_CUDA_SIM
#define EDM_LAUNCH(kernel, grid, block, smem, stream, ...)                                       \
    sim_launch((grid), (block), (smem), (stream), kernel, __VA_ARGS__)
#else
#define EDM_LAUNCH(kernel, grid, block, smem, stream, ...)                                       \
    kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#endif

/* Threads per block of the element-wise kernels (a multiple of 32). */
#define EDM_CUDA_THREADS 256

/* Runs `body` with T bound to the storage type of dtype dt. */
#define EDM_CUDA_DISPATCH(dt, T, ...)                                                            \
    do {                                                                                       \
        switch (dt) {                                                                          \
        case EDM_F16: {                                                                        \
            typedef __half T;                                                                  \
            __VA_ARGS__;                                                                       \
        } break;                                                                               \
        case EDM_BF16: {                                                                       \
            typedef __nv_bfloat16 T;                                                           \
            __VA_ARGS__;                                                                       \
        } break;                                                                               \
        default: {                                                                             \
            typedef float T;                                                                   \
            __VA_ARGS__;                                                                       \
        } break;                                                                               \
        }                                                                                      \
    } while (0)

/* ---- dtype helpers (device) -------------------------------------------------------------- */

__device__ __forceinline__ float edm_f(float v) { return v; }
__device__ __forceinline__ float edm_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float edm_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void edm_put(float *p, float v) { *p = v; }
__device__ __forceinline__ void edm_put(__half *p, float v) { *p = __float2half_rn(v); }
__device__ __forceinline__ void edm_put(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* Run-time dtype access, for the light element-wise kernels that accept any mix of dtypes. */
__device__ __forceinline__ float edm_ld(const void *p, int dt, int64_t i) {
    if (dt == EDM_F16) return __half2float(((const __half *)p)[i]);
    if (dt == EDM_BF16) return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    return ((const float *)p)[i];
}
__device__ __forceinline__ void edm_st(void *p, int dt, int64_t i, float v) {
    if (dt == EDM_F16) ((__half *)p)[i] = __float2half_rn(v);
    else if (dt == EDM_BF16) ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn(v);
    else ((float *)p)[i] = v;
}

/* Threads per block for a row of len items: a multiple of 32, at most EDM_CUDA_THREADS. */
static inline unsigned edm_cuda_row_threads(int64_t len) {
    return len >= EDM_CUDA_THREADS ? EDM_CUDA_THREADS : (unsigned)((len + 31) / 32 * 32);
}

/* Per-image launches: grid z indexes images (at most 65535 per launch), so kernels index
 * with 32-bit arithmetic inside an image (64-bit division is emulated on the GPU and cost
 * more than the memory traffic in the first version). body(n0, nz) launches images n0..+nz. */
template <typename F> static inline void edm_cuda_for_images(int N, F body) {
    for (int n0 = 0; n0 < N; n0 += 65535) body(n0, N - n0 < 65535 ? N - n0 : 65535);
}
static inline dim3 edm_cuda_grid(int64_t per, unsigned threads, unsigned y, int nz) {
    return dim3((unsigned)((per + threads - 1) / threads), y, (unsigned)nz);
}

/* Grid-stride loop over [0, total). */
#define EDM_CUDA_FOR(i, total)                                                                   \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (total);             \
         i += (int64_t)gridDim.x * blockDim.x)

/* Sum of v over the block; every thread gets the result. red: __shared__ float[32].
 * blockDim.x must be a multiple of 32; every thread of the block must call it. */
__device__ __forceinline__ float edm_block_sum(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = (int)(threadIdx.x & 31), warp = (int)(threadIdx.x >> 5);
    __syncthreads(); /* red may still be read by an earlier call */
    if (lane == 0) red[warp] = v;
    __syncthreads();
    float t = 0.0f;
    const int nw = (int)(blockDim.x >> 5);
    for (int w = 0; w < nw; w++) t += red[w]; /* same order in every thread: deterministic */
    return t;
}

__device__ __forceinline__ float edm_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float edm_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float edm_silu(float y) { return y / (1.0f + expf(-y)); }

/* ---- backend state ----------------------------------------------------------------------- */

enum edm_cuda_mode {
    EDM_CUDA_EAGER = 0, /* ops run as they come */
    EDM_CUDA_PENDING,   /* inside forward_begin, before the first op (which picks the mode) */
    EDM_CUDA_CAPTURE,   /* ops are captured into a graph, launched at forward_end */
    EDM_CUDA_REPLAY     /* ops are checked and recorded; forward_end launches the graph */
};

#define EDM_CUDA_MAX_GRAPHS 32
#define EDM_CUDA_REC_TENSORS 6

/* One op call: its code and arguments (tensors by value), for signatures and deferred runs. */
typedef struct edm_cuda_oprec {
    int op;
    int has; /* bit k: t[k] is present (else the op got NULL) */
    edm_tensor t[EDM_CUDA_REC_TENSORS];
    int i[3];
    float f[2];
} edm_cuda_oprec;

/* A learned op sequence and its captured graph, for one batch size and first op. */
typedef struct edm_cuda_graph {
    int n;            /* batch size; 0 = free slot */
    uint64_t key;     /* signature after the first op */
    int learned;      /* prefix[] holds a complete eager pass */
    int relearns;     /* times the sequence changed; graphs stop for this slot after a few */
    int disabled;     /* never capture (unstable sequence, transfers inside the bracket) */
    uint64_t used;    /* LRU stamp */
    int64_t nops;     /* ops of the learned pass */
    uint64_t *prefix; /* [nops] running signature after each op of the learned pass */
    int64_t prefix_cap;
    cudaGraphExec_t exec;
} edm_cuda_graph;

/* Conv weights rearranged to OHWI (cuda_layout.cu), cached by the original's address. */
typedef struct edm_cuda_weight {
    const void *key; /* the OIHW original */
    size_t bytes;    /* its size (and the copy's) */
    enum edm_dtype dtype;
    int n, c, k;
    void *data; /* the OHWI copy */
} edm_cuda_weight;

typedef struct edm_cuda {
    edm_backend *backend; /* back pointer: device_lost */
    edm_ops table;        /* this backend's op table (backend->ops points here) */
    int device;
    char name[128];
    int cc_major, cc_minor, sm_count;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    size_t blas_ws_bytes;
    enum edm_precision precision;
    enum edm_dtype act;               /* activation storage type */
    cublasComputeType_t act_compute;  /* GEMMs over activations (conv, attention) */
    /* scratch: im2col columns, attention logits; grows rarely, never shrinks */
    void *scratch;
    size_t scratch_bytes;
    size_t chunk_bytes; /* how much scratch one op aims to use per chunk of the batch */
    /* staging for dtype conversion in upload/download (never inside a graph) */
    void *stage;
    size_t stage_bytes;
    edm_cuda_weight *weights; /* rearranged conv weights */
    int nweights, capweights;
    struct edm_cudnn *dnn; /* cuDNN convolutions (cuda_cudnn.cu), NULL: im2col + cuBLAS */
    char conv_impl[48];    /* "cudnn 9.x" or "im2col+cublas", for the description */
    int sync_each_op; /* EDM_CUDA_SYNC=1: synchronize after every op (names a faulting op) */
    int debug;        /* EDM_CUDA_DEBUG=1: graph decisions on stderr */
    /* graphs */
    int graphs;                      /* EDM_CUDA_GRAPHS=1 */
    int fwd_active, fwd_n, fwd_mode; /* the open forward_begin/forward_end bracket */
    int fwd_slot, fwd_io, fwd_learning, flushing;
    int64_t fwd_nops;
    uint64_t fwd_sig, lru_clock;
    long n_captures, n_replays, n_fallbacks; /* edm_cuda_counter */
    edm_cuda_oprec *rec; /* ops recorded while replaying (run eagerly if the pass diverges) */
    int64_t nrec, rec_cap;
    int rec_lost; /* a record could not be stored (host memory): no eager recovery */
    edm_cuda_graph graph[EDM_CUDA_MAX_GRAPHS];
} edm_cuda;

/* ---- errors -------------------------------------------------------------------------------- */

/* Writes "cudaErrorX: text (in what)" to msg, marks the device lost on sticky errors, and
 * returns 1 (the op's failure code). */
int edm_cuda_error(edm_cuda *c, char *msg, cudaError_t e, const char *what);
int edm_cuda_blas_error(edm_cuda *c, char *msg, cublasStatus_t s, const char *what);
/* Writes a formatted message to msg and returns 1. */
int edm_cuda_fail(char *msg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define EDM_CUDA_TRY(c, msg, call, what)                                                         \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) return edm_cuda_error((c), (msg), e_, (what));                  \
    } while (0)

/* Checks the launches just queued (cudaGetLastError), and with EDM_CUDA_SYNC=1 (outside
 * capture) waits for them. Returns 0 or 1 with msg set. */
int edm_cuda_check(edm_cuda *c, char *msg, const char *what);

/* Makes the backend's device current on this thread. */
int edm_cuda_enter(edm_cuda *c, char *msg);

/* ---- op entry (CUDA graphs) ------------------------------------------------------------------ */

/* Builds the record of an op call: tensors t0..t5 (NULL = absent); ints and floats are set
 * by the caller. */
edm_cuda_oprec edm_cuda_rec(int op, const edm_tensor *t0, const edm_tensor *t1,
                            const edm_tensor *t2, const edm_tensor *t3, const edm_tensor *t4,
                            const edm_tensor *t5);
/*
 * Every op calls this first. Returns 0: run the op now (eagerly or into a capture); 1: the op
 * was checked against the captured sequence and recorded, forward_end will replay it; -1: an
 * error (msg set). Inside a bracket it folds the op into the pass's signature, and at the
 * first op picks the mode for the pass.
 */
int edm_cuda_op_enter(edm_cuda *c, const edm_cuda_oprec *r, char *msg);
/* The forward hooks (edm_ops.forward_begin / forward_end). */
int edm_cuda_forward_begin(void *ctx, int n, char *msg);
int edm_cuda_forward_end(void *ctx, int n, char *msg);
/* The counters of ops.h's counter hook: graph_captures (passes captured and kept),
 * graph_replays (passes replayed from a graph), graph_fallbacks (passes that fell back to
 * eager execution midway: their op sequence changed, or a transfer came inside the bracket). */
int edm_cuda_counter(void *ctx, const char *name, long *value);
/* Free and total memory of the device current on the calling thread; 0, or -1 (both 0). */
int edm_cuda_mem_info(size_t *free_bytes, size_t *total_bytes);
/* Before a transfer or synchronization: inside a bracket, runs what a capture or replay holds
 * so far and continues the pass eagerly (graphs stop for that slot). 0 or 1 (msg set). */
int edm_cuda_io_guard(edm_cuda *c, char *msg);
/* Ends a capture or replay early (its ops run now), the rest of the pass runs eagerly;
 * disable: no graphs for this slot again. 0 or 1 (msg set). */
int edm_cuda_fwd_cut(edm_cuda *c, char *msg, int disable);
/* Closes an open bracket, dropping whatever it captured or recorded (a failed pass). */
void edm_cuda_fwd_discard(edm_cuda *c);
/* Drops every graph (the scratch buffer moved); they are captured again on later passes. */
void edm_cuda_graphs_invalidate(edm_cuda *c);
/* Forgets every learned sequence and graph (device memory was freed: addresses get reused). */
void edm_cuda_graphs_forget(edm_cuda *c);
/* Frees all graph state (backend destruction). */
void edm_cuda_graphs_free(edm_cuda *c);

enum edm_cuda_opcode {
    EDM_CUDA_OP_CONV2D = 1,
    EDM_CUDA_OP_FIR_DOWN,
    EDM_CUDA_OP_FIR_UP,
    EDM_CUDA_OP_LINEAR,
    EDM_CUDA_OP_GROUP_NORM,
    EDM_CUDA_OP_BIAS_RESIDUAL,
    EDM_CUDA_OP_CONCAT,
    EDM_CUDA_OP_ATTENTION,
    EDM_CUDA_OP_EMBED,
    EDM_CUDA_OP_SCALE_ROWS,
    EDM_CUDA_OP_PRECOND_OUT
};

/* ---- memory, launch geometry --------------------------------------------------------------- */

/* The scratch buffer, at least `bytes` long (grown if needed; growing is refused during
 * capture). Returns NULL with msg set on failure. */
void *edm_cuda_scratch(edm_cuda *c, size_t bytes, char *msg);
/* Blocks for a grid-stride loop over total items with EDM_CUDA_THREADS threads (>= 1). */
unsigned edm_cuda_blocks(const edm_cuda *c, int64_t total);
size_t edm_cuda_dtype_size(enum edm_dtype t);
cudaDataType edm_cuda_dtype(enum edm_dtype t);
const char *edm_cuda_dtype_name(enum edm_dtype t);

/*
 * The one GEMM wrapper (column-major, cuBLAS's convention; callers do the row-major swap):
 *   C_i = alpha * op(A_i) op(B_i) + beta * C_i,  i < batch,  X_i = X + i * strideX (elements).
 * m, n, k, lda, ldb, ldc as cublasGemmStridedBatchedEx; batches are split to stay under the
 * grid limit. beta == 0 never reads C.
 */
int edm_cuda_gemm(edm_cuda *c, char *msg, const char *what, cublasOperation_t ta,
                  cublasOperation_t tb, int m, int n, int k, float alpha, const void *A,
                  cudaDataType at, int lda, long long sA, const void *B, cudaDataType bt, int ldb,
                  long long sB, float beta, void *C, cudaDataType ct, int ldc, long long sC,
                  int batch, cublasComputeType_t compute);

/* ---- cuDNN (cuda_cudnn.cu) -------------------------------------------------------------------- */

struct edm_cudnn;
/* Loads cuDNN when EDM_CUDA_CONV=cudnn and the precision is not fp32. Returns 0 (c->dnn set, or
 * NULL: im2col + cuBLAS), or 1 when EDM_CUDA_CONV=cudnn and cuDNN is unusable (reason in why). */
int edm_cudnn_init(edm_cuda *c, char *why, size_t why_len);
void edm_cudnn_free(edm_cuda *c);
/* out = conv(in, weight) + beta*out through cuDNN, NHWC; w_ohwi is the weight's OHWI copy
 * (edm_cuda_weight_ohwi), weight gives its shape. Returns 0, 1 (error, msg set), or 2 (cuDNN
 * is not loaded or refused this shape: use im2col). */
int edm_cudnn_conv(edm_cuda *c, edm_tensor *out, const edm_tensor *in, const void *w_ohwi,
                   const edm_tensor *weight, int pad, float beta, char *msg);

/* ---- op entry points (edm_ops signatures) ---------------------------------------------------- */

int edm_cuda_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                    const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                    char *msg);
int edm_cuda_linear(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                    const edm_tensor *bias, float alpha, float beta, int act_silu, char *msg);
int edm_cuda_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                        const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                        const edm_tensor *scale_shift, int act_silu, char *msg);
int edm_cuda_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg);
int edm_cuda_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                      int pad, char *msg);
int edm_cuda_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                    int pad, char *msg);
int edm_cuda_bias_residual(void *ctx, edm_tensor *out, const edm_tensor *in,
                           const edm_tensor *bias, const edm_tensor *residual, float scale,
                           char *msg);
int edm_cuda_concat(void *ctx, edm_tensor *out, const edm_tensor *a, const edm_tensor *b,
                    char *msg);
int edm_cuda_embed(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs,
                   int swap, char *msg);
int edm_cuda_scale_rows(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *coef,
                        char *msg);
int edm_cuda_precond_out(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                         const edm_tensor *c_skip, const edm_tensor *c_out, char *msg);

/* ---- layouts (cuda_layout.cu) ------------------------------------------------------------ */

/* dst = src between NCHW and NHWC (to_nhwc: src NCHW), N images of C x P, converting the
 * dtype. dst and src must not overlap. 0 or 1 (msg set). */
int edm_cuda_act_transpose(edm_cuda *c, char *msg, void *dst, enum edm_dtype dt, const void *src,
                           enum edm_dtype st, int N, int C, int P, int to_nhwc);
/* The conv weight w (OIHW) as [Co][ky][kx][Ci], made on first use and cached by address;
 * NULL with msg set on failure. */
const void *edm_cuda_weight_ohwi(edm_cuda *c, const edm_tensor *w, char *msg);
/* Drops cached copies made from memory overlapping [ptr, ptr + bytes); ptr NULL: all. */
void edm_cuda_weights_forget(edm_cuda *c, const void *ptr, size_t bytes);
void edm_cuda_weights_free(edm_cuda *c);

/* The bias/residual epilogue of conv2d and bias_residual (cuda_misc.cu), queued on the stream:
 * out = (in + bias[c] + residual) * scale over NHWC images, any dtypes; bias (f32) and
 * residual may be NULL, out may be in or residual. 0 or 1 (msg set). */
int edm_cuda_epilogue(edm_cuda *c, char *msg, edm_tensor *out, const edm_tensor *in,
                      const float *bias, const edm_tensor *residual, float scale);

/* Element-wise dtype conversion on the stream: dst[i] = src[i] (any dtypes). */
int edm_cuda_convert(edm_cuda *c, char *msg, void *dst, enum edm_dtype dt, const void *src,
                     enum edm_dtype st, int64_t count);

#endif /* __CUDACC__ || EDM_CUDA_SIM */
#endif /* EDM_CUDA_INTERNAL_H */
