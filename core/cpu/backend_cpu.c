/*
 * backend_cpu.c - the CPU backend: OpenBLAS for the GEMMs, OpenMP for everything else.
 *
 * This file holds the registry row (core/backend.c), the constructor, the op table, memory, per-thread scratch, the split
 * SGEMM helper and the element-wise ops; the heavier ops live in cpu_conv.c (conv2d, FIR
 * resampling), cpu_norm.c (group_norm), cpu_matmul.c (linear), cpu_attention.c (attention),
 * with the exp-based row kernels (silu, softmax) in cpu_vec.c.
 *
 * Design notes
 *  - fp32, and bf16 where oneDNN has it: --precision bf16 rounds the convolutions' operands
 *    (input and weights) to bf16, accumulating in fp32 (AMX or AVX512_BF16); activations and
 *    every other op stay fp32 (act_dtype F32). Otherwise fp32, as the reference is
 *    fp32 (spec section 1.12: only CUDA runs the image path in fp16).
 *  - One thread pool (OpenMP); OpenBLAS runs single-threaded inside it (cpu_internal.h).
 *  - oneDNN (cpu_dnnl.c) runs the convolutions and the GEMMs (dnnl_sgemm, single-threaded
 *    inside our team like OpenBLAS): it picks kernels by the ISA the CPU reports, where
 *    Debian's OpenBLAS 0.3.21 picks them by CPU model and falls back to generic SSE3
 *    ("Prescott") on models newer than it knows. EDM_CPU_ONEDNN=0 turns oneDNN off (the
 *    im2col + OpenBLAS engine, fp32 only), for comparison.
 *  - Memory is host memory, 64-byte aligned (cache lines, AVX-512 loads in OpenBLAS);
 *    upload/download are copies and sync is a no-op: every op is synchronous.
 *  - Semantics of every op: core/ops.h (spec section 1).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <dnnl.h>

#include "cpu_internal.h"
#include "status.h"

/* ---- helpers shared by the cpu_*.c files ------------------------------------------------ */

int edm_cpu_check_f32(char *msg, const char *what, int n, const edm_tensor *const *t) {
    for (int i = 0; i < n; i++) {
        if (!t[i]) continue;
        if (t[i]->dtype != EDM_F32) {
            snprintf(msg, EDM_OPS_MSG, "%s %d has dtype %d; the cpu backend is fp32 only", what, i,
                     (int)t[i]->dtype);
            return 1;
        }
        if (!t[i]->data) {
            snprintf(msg, EDM_OPS_MSG, "%s %d has no data", what, i);
            return 1;
        }
    }
    return 0;
}

/* Grows *buf (capacity *cap floats) to at least `floats`, 64-byte aligned, its contents
 * dropped. Returns 0, or non-zero with msg set. */
static int scratch_grow(struct cpu_ctx *cx, float **buf, size_t *cap, size_t floats, char *msg) {
    if (*cap >= floats) return 0;
    /* Round up so that a sequence of slightly growing requests reallocates rarely. */
    if (floats > SIZE_MAX / sizeof(float) - 4096) {
        snprintf(msg, EDM_OPS_MSG, "scratch of %zu floats is too large", floats);
        return 1;
    }
    size_t want = (floats + 4095) & ~(size_t)4095;
    float *p = aligned_alloc(64, want * sizeof(float));
    if (!p) {
        snprintf(msg, EDM_OPS_MSG, "out of memory for %zu bytes of scratch", want * sizeof(float));
        return 1;
    }
    free(*buf);
    *buf = p;
    *cap = want;
    cx->scratch_allocs++;
    return 0;
}

int edm_cpu_scratch_reserve(struct cpu_ctx *cx, size_t floats, char *msg) {
    for (int t = 0; t < cx->threads; t++)
        if (scratch_grow(cx, &cx->scratch[t], &cx->scratch_cap[t], floats, msg)) return 1;
    return 0;
}

float *edm_cpu_shared_scratch(struct cpu_ctx *cx, size_t floats, char *msg) {
    return scratch_grow(cx, &cx->shared, &cx->shared_cap, floats, msg) ? NULL : cx->shared;
}

int edm_cpu_team(const struct cpu_ctx *cx, double work, double grain) {
    double t = work / (grain > 1 ? grain : 1);
    if (t < 1) return 1;
    return t >= cx->threads ? cx->threads : (int)t;
}

void edm_cpu_gemm1(const struct cpu_ctx *cx, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc) {
    if (cx->onednn) {
        /* One thread's GEMM: its callers split the work over their own team. dnnl_sgemm
         * would open a team of omp_get_max_threads() inside theirs, and the nested threads
         * spin on cores the outer team needs (a small model's attention ran 4x slower). The
         * thread count is the calling task's own (OpenMP ICV), so this touches no other. */
        const int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                                     lda, B, ldb, beta, C, ldc);
        omp_set_num_threads(saved);
        if (s == dnnl_success) return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void edm_cpu_sgemm(const struct cpu_ctx *cx, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    /* ~10 MFLOP (~0.15 ms) per thread before splitting: a team barrier is cheap on an idle
     * machine but costs a time slice when a thread is preempted, and the callers (the mapping
     * network's linears) are small. Pieces narrower than 64 columns or 32 rows run at a
     * fraction of the kernel's speed, so split the wider dimension. */
    int team = edm_cpu_team(cx, 2.0 * M * N * (double)K, 1e7);
    int by_cols = N >= M || N / team >= 64;
    int parts = by_cols ? (N / 64 < team ? N / 64 : team) : (M / 32 < team ? M / 32 : team);
    if (parts <= 1 || K <= 0) {
        edm_cpu_gemm1(cx, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for num_threads(parts) schedule(static)
    for (int t = 0; t < parts; t++) {
        if (by_cols) {
            int n0 = (int)((int64_t)N * t / parts), n1 = (int)((int64_t)N * (t + 1) / parts);
            const float *Bt = trans_b ? B + (size_t)n0 * ldb : B + n0;
            edm_cpu_gemm1(cx, trans_a, trans_b, M, n1 - n0, K, alpha, A, lda, Bt, ldb, beta, C + n0, ldc);
        } else {
            int m0 = (int)((int64_t)M * t / parts), m1 = (int)((int64_t)M * (t + 1) / parts);
            const float *At = trans_a ? A + m0 : A + (size_t)m0 * lda;
            edm_cpu_gemm1(cx, trans_a, trans_b, m1 - m0, N, K, alpha, At, lda, B, ldb, beta,
                   C + (size_t)m0 * ldc, ldc);
        }
    }
}

/* ---- memory ------------------------------------------------------------------------------ */

static void *cpu_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    if (bytes > SIZE_MAX - 63) return NULL;
    size_t n = (bytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple of the alignment */
    return aligned_alloc(64, n ? n : 64);
}

static void cpu_free(void *ctx, void *ptr) {
    struct cpu_ctx *cx = ctx;
    edm_cpu_dnnl_forget_alloc(cx->dnnl, ptr); /* reordered copies of weights in it */
    free(ptr);
}

static int cpu_upload(void *ctx, edm_tensor *dst, const float *src, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, dst);
    edm_cpu_dnnl_forget(cx->dnnl, dst->data, (size_t)edm_tensor_numel(dst) * sizeof(float));
    memcpy(dst->data, src, (size_t)edm_tensor_numel(dst) * sizeof(float));
    return 0;
}

static int cpu_download(void *ctx, float *dst, const edm_tensor *src, char *msg) {
    (void)ctx;
    CPU_CHECK_F32(msg, src);
    memcpy(dst, src->data, (size_t)edm_tensor_numel(src) * sizeof(float));
    return 0;
}

static int cpu_counter(void *ctx, const char *name, long *value) {
    const struct cpu_ctx *cx = ctx;
    if (strcmp(name, "scratch_allocs") == 0)
        *value = cx->scratch_allocs;
    else if (strcmp(name, "attention_bf16") == 0)
        *value = cx->attn_bf16_calls;
    else
        return 1;
    return 0;
}

static int cpu_sync(void *ctx, char *msg) {
    (void)ctx;
    (void)msg;
    return 0;
}

/* ---- activations in and out: host NCHW <-> NHWC ------------------------------------------ */

#define TB 32 /* transpose tile: TB channels x TB pixels */

/* Image by image, tile by tile: to_nhwc dst[n][P][C] = src[n][C][P], else the inverse. */
static void transpose_act(const struct cpu_ctx *cx, float *dst, const float *src, int N, int C,
                          int64_t P, int to_nhwc) {
    const int64_t ct = (C + TB - 1) / TB, pt = (P + TB - 1) / TB;
    int team = edm_cpu_team(cx, (double)N * C * P, 65536.0);
#pragma omp parallel for num_threads(team) schedule(static) collapse(2)
    for (int n = 0; n < N; n++) {
        for (int64_t tile = 0; tile < ct * pt; tile++) {
            const int c0 = (int)(tile / pt) * TB, c1 = c0 + TB < C ? c0 + TB : C;
            const int64_t p0 = tile % pt * TB, p1 = p0 + TB < P ? p0 + TB : P;
            const float *s = src + (int64_t)n * C * P;
            float *d = dst + (int64_t)n * C * P;
            if (to_nhwc) {
                for (int64_t p = p0; p < p1; p++)
                    for (int c = c0; c < c1; c++) d[p * C + c] = s[(int64_t)c * P + p];
            } else {
                for (int c = c0; c < c1; c++)
                    for (int64_t p = p0; p < p1; p++) d[(int64_t)c * P + p] = s[p * C + c];
            }
        }
    }
}

static int cpu_upload_act(void *ctx, edm_tensor *dst, const float *src, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, dst);
    edm_cpu_dnnl_forget(cx->dnnl, dst->data, (size_t)edm_tensor_numel(dst) * sizeof(float));
    transpose_act(cx, cpu_f(dst), src, dst->n, dst->c, (int64_t)dst->h * dst->w, 1);
    return 0;
}

static int cpu_download_act(void *ctx, float *dst, const edm_tensor *src, char *msg) {
    CPU_CHECK_F32(msg, src);
    transpose_act(ctx, dst, cpu_f(src), src->n, src->c, (int64_t)src->h * src->w, 0);
    return 0;
}

/* ---- element-wise ops (activations NHWC: a pixel's C channels are contiguous) -------------- */

/* Element-wise loops below ~64K elements run on one thread: waking the team costs more. */
#define ELEM_GRAIN 65536.0

static int cpu_bias_residual(void *ctx, edm_tensor *out, const edm_tensor *in,
                             const edm_tensor *bias, const edm_tensor *residual, float scale,
                             char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, bias, residual);
    const int64_t pixels = (int64_t)out->n * out->h * out->w;
    const int C = out->c;
    const float *x = cpu_f(in), *b = bias ? cpu_f(bias) : NULL;
    const float *r = residual ? cpu_f(residual) : NULL;
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)pixels * C, ELEM_GRAIN);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t px = 0; px < pixels; px++) {
        const float *xr = x + px * C, *rr = r ? r + px * C : NULL;
        float *yr = y + px * C;
        /* (in + bias) + residual, then * scale: the order of the reference's operations. */
        if (rr && b) {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = (xr[c] + b[c] + rr[c]) * scale;
        } else if (rr) {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = (xr[c] + rr[c]) * scale;
        } else if (b) {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = (xr[c] + b[c]) * scale;
        } else {
#pragma omp simd
            for (int c = 0; c < C; c++) yr[c] = xr[c] * scale;
        }
    }
    return 0;
}

static int cpu_concat(void *ctx, edm_tensor *out, const edm_tensor *a, const edm_tensor *b,
                      char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, a, b);
    const int64_t pixels = (int64_t)out->n * out->h * out->w;
    const int Ca = a->c, Cb = b->c;
    const float *av = cpu_f(a), *bv = cpu_f(b);
    float *o = cpu_f(out);
    int team = edm_cpu_team(cx, (double)pixels * (Ca + Cb), ELEM_GRAIN);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t px = 0; px < pixels; px++) {
        memcpy(o + px * (Ca + Cb), av + px * Ca, (size_t)Ca * sizeof(float));
        memcpy(o + px * (Ca + Cb) + Ca, bv + px * Cb, (size_t)Cb * sizeof(float));
    }
    return 0;
}

static int cpu_embed(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs,
                     int swap, char *msg) {
    (void)ctx;
    CPU_CHECK_F32(msg, out, x, freqs);
    const int64_t half = edm_tensor_numel(freqs);
    const float *xv = cpu_f(x), *f = cpu_f(freqs);
    for (int n = 0; n < out->n; n++) {
        float *o = cpu_f(out) + n * 2 * half;
        float *oc = swap ? o + half : o, *os = swap ? o : o + half;
        for (int64_t i = 0; i < half; i++) {
            /* fp32 product (FLT_EVAL_METHOD 0, no contraction under -std=c11), as the reference. */
            float arg = xv[n] * f[i];
            oc[i] = cosf(arg);
            os[i] = sinf(arg);
        }
    }
    return 0;
}

/* Per sample: the same in any layout. */
static int cpu_scale_rows(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *coef,
                          char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, coef);
    const int64_t row = (int64_t)in->c * in->h * in->w;
    const float *x = cpu_f(in), *k = cpu_f(coef);
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)row * in->n, ELEM_GRAIN);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int n = 0; n < in->n; n++) {
#pragma omp simd
        for (int64_t i = 0; i < row; i++) y[n * row + i] = k[n] * x[n * row + i];
    }
    return 0;
}

static int cpu_precond_out(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                           const edm_tensor *c_skip, const edm_tensor *c_out, char *msg) {
    (void)ctx;
    CPU_CHECK_F32(msg, out, x, F, c_skip, c_out);
    const int64_t P = (int64_t)out->h * out->w;
    const int C = out->c, CF = F->c; /* F may have more channels (iDDPM): pixel stride CF */
    const float *xv = cpu_f(x), *fv = cpu_f(F), *cs = cpu_f(c_skip), *co = cpu_f(c_out);
    float *y = cpu_f(out);
    for (int n = 0; n < out->n; n++) {
        for (int64_t p = 0; p < P; p++) {
            const int64_t px = (int64_t)n * P + p;
#pragma omp simd
            for (int c = 0; c < C; c++)
                y[px * C + c] = cs[n] * xv[px * C + c] + co[n] * fv[px * CF + c];
        }
    }
    return 0;
}

/* ---- table and constructor ---------------------------------------------------------------- */

static void cpu_destroy(void *ctx) {
    struct cpu_ctx *cx = ctx;
    if (!cx) return;
    for (int t = 0; t < EDM_CPU_MAX_THREADS; t++) free(cx->scratch[t]);
    free(cx->shared);
    edm_cpu_dnnl_free(cx->dnnl);
    free(cx);
}

static const edm_ops cpu_ops = {
    .name = "cpu",
    .act_layout = EDM_NHWC,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .upload_act = cpu_upload_act,
    .download_act = cpu_download_act,
    .counter = cpu_counter,
    .sync = cpu_sync,
    .conv2d = edm_cpu_conv2d,
    .fir_down = edm_cpu_fir_down,
    .fir_up = edm_cpu_fir_up,
    .linear = edm_cpu_linear,
    .group_norm = edm_cpu_group_norm,
    .bias_residual = cpu_bias_residual,
    .concat = cpu_concat,
    .attention = edm_cpu_attention,
    .embed = cpu_embed,
    .scale_rows = cpu_scale_rows,
    .precond_out = cpu_precond_out,
    .forward_begin = NULL,
    .forward_end = NULL,
    .destroy = cpu_destroy,
};

/* "OpenBLAS 0.3.21" from openblas_get_config()'s "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...". */
static void blas_version(char *buf, size_t size) {
    const char *cfg = openblas_get_config();
    const char *sp = cfg ? strchr(cfg, ' ') : NULL;
    const char *end = sp ? strchr(sp + 1, ' ') : NULL;
    int len = cfg ? (end ? (int)(end - cfg) : (int)strlen(cfg)) : 0;
    if (len == 0) {
        snprintf(buf, size, "OpenBLAS");
        return;
    }
    const char *core = openblas_get_corename();
    snprintf(buf, size, "%.*s %s", len, cfg, core ? core : "");
}

static enum edm_status cpu_backend_new(const edm_backend_options *opts, edm_backend **out,
                                    edm_error *err) {
    *out = NULL;
    if (opts->precision != EDM_PRECISION_FP32 && opts->precision != EDM_PRECISION_BF16) {
        return edm_error_set(err, EDM_EUNSUPPORTED,
                             "the cpu backend computes in fp32 or bf16 (precision %s needs the "
                             "cuda backend)",
                             edm_precision_name(opts->precision));
    }
    if (opts->device != 0) {
        return edm_error_set(err, EDM_EINVAL,
                             "the cpu backend has one device, 0 (all cores); device %d does not "
                             "exist",
                             opts->device);
    }
    if (opts->threads < 0) {
        return edm_error_set(err, EDM_EINVAL, "threads must be >= 0 (0 = all cores), got %d",
                             opts->threads);
    }
    /* 0: OpenMP's default team size, i.e. OMP_NUM_THREADS when set (containers with a CPU
     * quota but no affinity mask), else every processor this process may run on. */
    int threads = opts->threads ? opts->threads : omp_get_max_threads();
    if (threads < 1) threads = 1;
    if (threads > EDM_CPU_MAX_THREADS) threads = EDM_CPU_MAX_THREADS;

    edm_backend *b = calloc(1, sizeof *b);
    struct cpu_ctx *cx = calloc(1, sizeof *cx);
    if (!b || !cx) {
        free(b);
        free(cx);
        return edm_error_set(err, EDM_ENOMEM, "out of memory creating the cpu backend");
    }
    cx->threads = threads;
    cx->bf16 = opts->precision == EDM_PRECISION_BF16;
    const char *onednn = getenv("EDM_CPU_ONEDNN");
    cx->onednn = cx->bf16 || !(onednn && strcmp(onednn, "0") == 0); /* bf16 needs it */
    const char *wino = getenv("EDM_CPU_WINOGRAD"); /* unset: fp32 only; 0: never; 1: always */
    cx->winograd = !cx->onednn ? 0 : !wino ? 1 : strcmp(wino, "0") == 0 ? 0 : 2;
    /* Process-wide: OpenBLAS runs on the caller's thread; our OpenMP team does the splitting. */
    openblas_set_num_threads(1);

    b->ops = &cpu_ops;
    b->ctx = cx;
    b->precision = opts->precision;
    b->act_dtype = EDM_F32; /* bf16 rounds conv operands only; activations stay fp32 */
    char blas[96];
    blas_version(blas, sizeof blas);
    const dnnl_version_t *dv = dnnl_version();
    snprintf(b->description, sizeof b->description,
             "cpu (%s, oneDNN %d.%d%s, %d thread%s, %s)", blas, dv->major, dv->minor,
             cx->onednn ? "" : " off", threads, threads == 1 ? "" : "s",
             cx->bf16 ? "bf16 convs" : "fp32");
    *out = b;
    edm_error_clear(err);
    return EDM_OK;
}

/* The host is one device, whatever its cores: the worker's OpenMP team spans them. */
static int cpu_device_count(void) {
    return 1;
}

const edm_backend_reg edm_backend_reg_cpu = {
    .name = "cpu",
    .compiled = 1,
    .device_count = cpu_device_count,
    .create = cpu_backend_new,
};
