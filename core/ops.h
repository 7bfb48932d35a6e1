/*
 * ops.h - the op interface between the network code and the compute backends.
 *
 * The networks (core/net/) and the preconditioner are
 * straight-line sequences of calls to edm_op_* below; they never touch pixels themselves.
 * Each edm_op_* (ops.c) checks shapes once, then dispatches to the backend's table
 * (struct edm_ops). The first failure is recorded in the backend's sticky status and every
 * later op becomes a no-op, so the network code checks once per forward pass.
 *
 * Backends: one folder each (core/cpu/ with OpenBLAS, core/cuda/), found through the registry
 * in backend.c, and a "null" backend (ops.c) that does no arithmetic: it counts FLOPs and bytes, used to size the workspace
 * and to report FLOPs per image.
 *
 * Tensors are views into backend memory; they own nothing. Shapes are logical: (n, c, h, w)
 * and every index below, out[n,c,y,x], is the same whatever the memory order. A [N, K]
 * matrix is a tensor with h = w = 1 (c = K). All math is defined on fp32 values; a backend
 * may store activations in a narrower type (t.dtype) and must then say so through its
 * precision.
 *
 * Layouts: a backend declares the memory order of its ACTIVATIONS (edm_ops.act_layout):
 *   EDM_NCHW  element (n,c,y,x) at ((n*C + c)*H + y)*W + x      (the null backend)
 *   EDM_NHWC  element (n,c,y,x) at ((n*H + y)*W + x)*C + c      (the CPU and CUDA backends)
 * Activations are the image-path operands with spatial extent: conv2d's in, residual and
 * out, fir in/out, group_norm in/out, bias_residual in/residual/out, concat a/b/out,
 * attention qkv/out, scale_rows in/out, precond_out x/F/out. Everything else keeps the
 * model file's layout whatever the backend: conv weights [Co,Ci,k,k] (OIHW), FIR filters,
 * gamma/beta, biases, linear weights, embeddings and per-sample vectors ([N,K] tensors with
 * h = w = 1 and per-sample [N] coefficients read the same in both orders). A backend that
 * wants its weights in another order rearranges them itself, once (both backends cache
 * reordered copies by address, and drop them when that memory is freed or written).
 * Host data crosses the boundary NCHW: edm_op_upload_act /
 * edm_op_download_act convert activations, edm_op_upload / edm_op_download copy raw memory
 * (weights, labels, coefficients). In NHWC, channel indices keep their meaning: attention's
 * qkv channel o = 3*(hd*Ch + c) + j is the o-th value of each pixel, and precond_out's F
 * with C' >= C channels has a pixel stride of C' (only its first C are read).
 *
 * Dtypes (spec 1.12): the image path (activations flowing through conv, fir, group_norm in/out,
 * concat, attention, bias_residual, scale_rows' out, precond_out's F) and conv weights use the
 * backend's act_dtype; everything else is F32: biases, norm gamma/beta, linear weights and
 * outputs (the mapping network and affine run in fp32), pre_add/scale_shift, filters, embeddings,
 * per-sample coefficients, the input x and the output D. The CPU backend is F32 throughout.
 *
 * GEMM convention (stated once, row-major like PyTorch's Linear):
 *     Y[M, N] = X[M, K] . W[N, K]^T + b
 */
#ifndef EDM_OPS_H
#define EDM_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "edm.h"

#ifdef __cplusplus
extern "C" {
#endif

enum edm_dtype { EDM_F32 = 0, EDM_F16 = 1, EDM_BF16 = 2 };

/* Memory order of activation tensors (see "Layouts" above). */
enum edm_layout { EDM_NCHW = 0, EDM_NHWC = 1 };

typedef struct edm_tensor {
    void *data; /* backend memory; NULL in the null backend */
    int n, c, h, w;
    enum edm_dtype dtype;
} edm_tensor;

static inline int64_t edm_tensor_numel(const edm_tensor *t) {
    return (int64_t)t->n * t->c * t->h * t->w;
}

struct edm_backend_impl; /* a backend's private state */

/*
 * A backend's table. ctx is the backend's private state. Every op may assume its shapes were
 * checked by ops.c (documented per op below). Ops return 0 on success or non-zero after
 * writing a message into msg (size EDM_OPS_MSG); the front-end makes it sticky.
 */
#define EDM_OPS_MSG 256
typedef struct edm_ops {
    const char *name;
    enum edm_layout act_layout; /* memory order of activations (ops.h "Layouts") */

    /* Memory. alloc returns NULL on failure. Device memory for CUDA, host for CPU. */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *ptr);
    /* Free and total bytes of the device's memory now, for error messages and benchmarks;
     * returns 0, or non-zero where not known. NULL where that is never known (host memory). */
    int (*mem_info)(void *ctx, size_t *free_bytes, size_t *total_bytes);
    /* A named counter of the backend (for tests and benchmarks: "graph_captures", ...);
     * returns 0, or non-zero when it has none of that name. May be NULL. */
    int (*counter)(void *ctx, const char *name, long *value);
    /* Host fp32 -> tensor (converting to t->dtype), tensor -> host fp32, element i of the
     * host array to element i of the tensor's memory: raw, no layout change. */
    int (*upload)(void *ctx, edm_tensor *dst, const float *src, char *msg);
    int (*download)(void *ctx, float *dst, const edm_tensor *src, char *msg);
    /* The same for an activation: host NCHW <-> the tensor in act_layout. May be NULL when
     * act_layout is EDM_NCHW (upload/download then serve). */
    int (*upload_act)(void *ctx, edm_tensor *dst, const float *src, char *msg);
    int (*download_act)(void *ctx, float *dst, const edm_tensor *src, char *msg);
    /* Waits for queued work (no-op on synchronous backends). */
    int (*sync)(void *ctx, char *msg);

    /*
     * conv2d: out = (conv(in, weight, stride 1, zero padding pad) + bias[c] + residual) * out_scale
     *   in [N,Ci,H,W], weight [Co,Ci,k,k] (as a tensor n=Co, c=Ci, h=w=k; OIHW memory in
     *   every layout), bias [Co] or NULL, residual [N,Co,Ho,Wo] or NULL, out [N,Co,Ho,Wo] with
     *   Ho = H + 2*pad - k + 1 (in, residual, out: activations). residual may alias out only
     *   if it is exactly out.
     */
    int (*conv2d)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                  const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                  char *msg);

    /*
     * fir_down: depthwise FIR with the 2-D filter f [L,L] (tensor n=c=1, h=w=L), stride 2,
     *   zero padding pad: out[n,c,m,q] = sum_{a,b} f[a,b] * in[n,c,2m+a-pad,2q+b-pad].
     *   out [N,C,Ho,Wo] (Ho given by the caller: H/2 on the standard path).
     */
    int (*fir_down)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                    int pad, char *msg);
    /*
     * fir_up: depthwise transposed FIR, stride 2, with gain 4:
     *   out[n,c,Y,X] = sum_{i,j,a,b : 2i+a-pad = Y, 2j+b-pad = X} 4*f[a,b] * in[n,c,i,j].
     *   out [N,C,2H,2W].
     */
    int (*fir_up)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                  int pad, char *msg);

    /*
     * linear: out = act(beta*out + (alpha*in) . W^T + b)
     *   in [N,K] (any c*h*w = K), W [O,K] (tensor n=O, c=K), b [O] or NULL, out [N,O].
     *   beta is 0 or 1; act_silu 0 or 1. Always fp32 (the mapping network runs in fp32).
     */
    int (*linear)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                  const edm_tensor *bias, float alpha, float beta, int act_silu, char *msg);

    /*
     * group_norm: per sample n and group g of C/G channels, mean and biased variance over
     *   (C/G)*H*W values of v = in + pre_add[n,c] (pre_add [N,C] or NULL), then
     *   y = (v - mu)/sqrt(var + eps) * gamma[c] + beta[c];
     *   if scale_shift ([N,2C], scale = first half): y = shift[n,c] + y*(scale[n,c] + 1);
     *   if act_silu: y = silu(y).
     *   Statistics in fp32 (or wider). out may alias in.
     */
    int (*group_norm)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                      const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                      const edm_tensor *scale_shift, int act_silu, char *msg);

    /*
     * bias_residual: out = (in + bias[c] + residual) * scale; bias [C] or NULL, residual
     *   same shape as out or NULL. out may alias in or residual.
     */
    int (*bias_residual)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *bias,
                         const edm_tensor *residual, float scale, char *msg);

    /* concat: out[N, Ca+Cb, H, W] = [a | b] along channels. */
    int (*concat)(void *ctx, edm_tensor *out, const edm_tensor *a, const edm_tensor *b, char *msg);

    /*
     * attention: qkv [N, 3C, H, W] in the official interleaved layout: channel
     *   o = 3*(hd*Ch + c) + j belongs to head hd, channel c (Ch = C/heads), part j (0 q, 1 k, 2 v).
     *   w[b,i,j] = softmax_j( sum_c q[b,c,i] * (k[b,c,j] / sqrt(Ch)) ) in fp32,
     *   out[n, hd*Ch + c, i] = sum_j w[b,i,j] * v[b,c,j], b = n*heads + hd. out [N, C, H, W].
     *   i, j: pixels. In NHWC the 3C channels of a pixel are contiguous, so head hd's q, k
     *   and v of pixel i are the channels 3*(hd*Ch + c) + j, a stride of 3 in memory.
     */
    int (*attention)(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg);

    /*
     * embed: out [N, 2*half] = [cos(x[n]*f[i]) | sin(x[n]*f[i])] for i < half, or [sin | cos]
     *   when swap; x [N] (tensor n=N, c=h=w=1), freqs [half]. The product x*f is rounded to
     *   fp32 before the accurate sinf/cosf, as the reference.
     */
    int (*embed)(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs, int swap,
                 char *msg);

    /* scale_rows: out[n,...] = coef[n] * in[n,...]; coef [N]. out may alias in. */
    int (*scale_rows)(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *coef,
                      char *msg);

    /*
     * precond_out: out[n,c,p] = c_skip[n]*x[n,c,p] + c_out[n]*F[n,c,p] for c < C(out);
     *   x and out [N,C,H,W], F [N,C',H,W] with C' >= C (iDDPM has 2C); c_skip, c_out [N].
     *   x, F and out are activations (x and out fp32): in NHWC F's pixel stride is C'.
     */
    int (*precond_out)(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                       const edm_tensor *c_skip, const edm_tensor *c_out, char *msg);

    /* Optional hooks around one forward pass (CUDA graphs); may be NULL. */
    int (*forward_begin)(void *ctx, int n, char *msg);
    int (*forward_end)(void *ctx, int n, char *msg);

    void (*destroy)(void *ctx);
} edm_ops;

/* A backend instance: its table, private state, sticky status and counters. */
struct edm_backend {
    const edm_ops *ops;
    void *ctx;
    const char *name;         /* its registry name ("cpu", "cuda"), set by edm_backend_new */
    enum edm_precision precision;
    enum edm_dtype act_dtype; /* storage type of activations */
    int failed;               /* sticky: non-zero after the first failing op */
    int device_lost;          /* unrecoverable device error */
    char message[512];        /* the first failure, "op_name: message" */
    char description[160];
    /* counters, used by the null backend and by benchmarks */
    double flops;
    int64_t ops_run;
};

/* Records a failure unless one is already recorded (sticky). */
void edm_backend_fail(edm_backend *b, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Clears the sticky status (after the caller has handled the failure). */
void edm_backend_clear(edm_backend *b);

/* The null backend: counts FLOPs, allocates nothing. Free with edm_backend_free. */
edm_backend *edm_backend_null_new(void);

/*
 * A registry row (backend.c): each backend's folder exports one. device_count() is the number
 * of usable devices now (0 = unavailable; the CPU is one device); create() makes an instance
 * for opts->device. A backend this build leaves out exports a row with compiled = 0 whose
 * create() says why.
 */
typedef struct edm_backend_reg {
    const char *name;
    int compiled;
    int (*device_count)(void);
    enum edm_status (*create)(const edm_backend_options *opts, edm_backend **out, edm_error *err);
} edm_backend_reg;

/* ---- front-end: shape checks, FLOP counting, dispatch ---------------------------------- */

void edm_op_conv2d(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale);
void edm_op_fir_down(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                     const edm_tensor *filter, int pad);
void edm_op_fir_up(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                   int pad);
void edm_op_linear(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, float alpha, float beta, int act_silu);
void edm_op_group_norm(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                       const edm_tensor *gamma, const edm_tensor *beta, int groups, float eps,
                       const edm_tensor *pre_add, const edm_tensor *scale_shift, int act_silu);
void edm_op_bias_residual(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                          const edm_tensor *bias, const edm_tensor *residual, float scale);
void edm_op_concat(edm_backend *b, edm_tensor *out, const edm_tensor *a, const edm_tensor *bt);
void edm_op_attention(edm_backend *b, edm_tensor *out, const edm_tensor *qkv, int heads);
void edm_op_embed(edm_backend *b, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs,
                  int swap);
void edm_op_scale_rows(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                       const edm_tensor *coef);
void edm_op_precond_out(edm_backend *b, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                        const edm_tensor *c_skip, const edm_tensor *c_out);
/* Raw copies (weights, labels, per-sample vectors): host element i = memory element i. */
void edm_op_upload(edm_backend *b, edm_tensor *dst, const float *src);
void edm_op_download(edm_backend *b, float *dst, const edm_tensor *src);
/* Activations: the host side is NCHW, the tensor in the backend's act_layout. */
void edm_op_upload_act(edm_backend *b, edm_tensor *dst, const float *src);
void edm_op_download_act(edm_backend *b, float *dst, const edm_tensor *src);

/* Bytes per element of a dtype. */
size_t edm_dtype_size(enum edm_dtype t);

#ifdef __cplusplus
}
#endif
#endif /* EDM_OPS_H */
