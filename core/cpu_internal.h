/*
 * cpu_internal.h - private state and helpers shared by the CPU backend's files
 * (backend_cpu.c, cpu_conv.c, cpu_norm.c, cpu_matmul.c). Nothing outside those files
 * includes it.
 *
 * Threading model: OpenMP is the only thread pool. OpenBLAS is told to run every call on
 * the calling thread (openblas_set_num_threads(1)), and the backend splits its GEMMs across
 * its own OpenMP team (by images, pixel columns or output rows). Two pools on the same
 * cores (OpenMP's spinning workers and OpenBLAS's pthreads) oversubscribe the machine, and
 * per-image GEMMs on separate threads also let im2col and the epilogue run in parallel.
 */
#ifndef EDM_CPU_INTERNAL_H
#define EDM_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"

/* The most threads one backend uses: OpenBLAS 0.3.21 (MAX_THREADS=64) keeps a fixed table of
 * per-call buffers, so more concurrent single-threaded calls than that are not safe. */
#define EDM_CPU_MAX_THREADS 64

struct cpu_ctx {
    int threads;
    /* Per-thread scratch (im2col columns, GEMM tiles, attention scores), 64-byte aligned,
     * grown by edm_cpu_scratch_reserve before a parallel region and kept: no allocation per
     * op in steady state. */
    float *scratch[EDM_CPU_MAX_THREADS];
    size_t scratch_cap[EDM_CPU_MAX_THREADS]; /* floats */
};

/* Makes every thread's scratch at least `floats` long. Returns 0, or non-zero with msg set. */
int edm_cpu_scratch_reserve(struct cpu_ctx *cx, size_t floats, char *msg);

/* Threads worth using for `work` units of roughly `grain` units each (at least 1). */
int edm_cpu_team(const struct cpu_ctx *cx, double work, double grain);

/*
 * Row-major C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, split across the team by
 * columns (or rows when N is small); each piece is one single-threaded cblas_sgemm.
 * trans_a/trans_b: 0 = as stored, 1 = transposed.
 */
void edm_cpu_sgemm(const struct cpu_ctx *cx, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);

/* Ops implemented outside backend_cpu.c (signatures as struct edm_ops). */
int edm_cpu_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                   char *msg);
int edm_cpu_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                     int pad, char *msg);
int edm_cpu_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                   int pad, char *msg);
int edm_cpu_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                       const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                       const edm_tensor *scale_shift, int act_silu, char *msg);
int edm_cpu_linear(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, float alpha, float beta, int act_silu, char *msg);
int edm_cpu_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg);

/* Returns 0 when every non-NULL tensor is fp32 with data, else writes msg and returns 1. */
int edm_cpu_check_f32(char *msg, const char *what, int n, const edm_tensor *const *t);
#define CPU_CHECK_F32(msg, ...)                                                                \
    do {                                                                                       \
        const edm_tensor *const t_[] = {__VA_ARGS__};                                          \
        if (edm_cpu_check_f32(msg, "operand", (int)(sizeof t_ / sizeof t_[0]), t_)) return 1;  \
    } while (0)

static inline float *cpu_f(const edm_tensor *t) {
    return (float *)t->data;
}

/*
 * exp(x) in fp32 for the softmax and silu hot loops, written so the compiler vectorizes it
 * (no libm call): x = k*ln2 + r with a two-constant Cody-Waite split, a degree-7 polynomial for
 * e^r on |r| <= ln2/2, and 2^k built in the exponent bits. Max error about 1 ulp over the
 * normal range (checked against exp() in test_ops); underflows to 0 below -87.3 and returns
 * +inf above 88.7, as expf does.
 */
static inline float cpu_expf(float x) {
    const float hi = 88.7228f, lo = -87.3365f;
    float xc = x > hi ? hi : (x < lo ? lo : x);
    /* round to nearest with the 1.5*2^23 trick: no floorf call, so the loop vectorizes */
    float kf = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - kf * 0.693359375f;   /* ln2 high part (exact in fp32 times k) */
    r = r - kf * -2.12194440e-4f;       /* ln2 low part */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t k = (int32_t)kf;
    union {
        int32_t i;
        float f;
    } s;
    /* 2^k for k in [-126, 128]: split into two factors so k = 128 does not overflow early. */
    int32_t k1 = k >> 1, k2 = k - k1;
    s.i = (k1 + 127) << 23;
    float s1 = s.f;
    s.i = (k2 + 127) << 23;
    float y = p * s1 * s.f;
    if (x < lo) y = 0.0f;
    if (x > hi) y = __builtin_inff();
    return y;
}

static inline float cpu_silu(float y) {
    return y / (1.0f + cpu_expf(-y));
}

#endif /* EDM_CPU_INTERNAL_H */
