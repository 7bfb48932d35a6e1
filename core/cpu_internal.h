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
 * Four-lane fp32 vectors (GCC/Clang vector extensions: SSE2 on x86-64, NEON on arm64), for
 * the exp-based loops (softmax, silu). Written with explicit lanes because GCC will not
 * if-convert the range clamps of a scalar exp under the default -ftrapping-math, so a plain
 * loop calling a scalar exp stays scalar.
 */
typedef float cpu_f4 __attribute__((vector_size(16)));
typedef int32_t cpu_i4 __attribute__((vector_size(16)));

static inline cpu_f4 cpu_splat(float v) {
    return (cpu_f4){v, v, v, v};
}
static inline cpu_f4 cpu_load4(const float *p) {
    cpu_f4 v;
    __builtin_memcpy(&v, p, sizeof v); /* unaligned load */
    return v;
}
static inline void cpu_store4(float *p, cpu_f4 v) {
    __builtin_memcpy(p, &v, sizeof v);
}
/* m ? a : b per lane, m from a vector comparison (all ones or all zeros) */
static inline cpu_f4 cpu_select(cpu_i4 m, cpu_f4 a, cpu_f4 b) {
    return (cpu_f4)((m & (cpu_i4)a) | (~m & (cpu_i4)b));
}

/*
 * exp(x) in fp32, four lanes: x = k*ln2 + r with a two-constant Cody-Waite split, the
 * Cephes degree-7 polynomial for e^r on |r| <= ln2/2, and 2^k built in the exponent bits
 * (two factors, so k = 128 does not overflow early). Max error about 1 ulp over the normal
 * range (test_ops checks it against exp()); 0 below -87.34 (no denormals), +inf above 88.72.
 */
static inline cpu_f4 cpu_expf4(cpu_f4 x) {
    const cpu_f4 hi = cpu_splat(88.7228f), lo = cpu_splat(-87.3365f);
    cpu_f4 xc = cpu_select(x < lo, lo, x);
    xc = cpu_select(xc > hi, hi, xc);
    /* k = round(x / ln2): adding 1.5*2^23 leaves k in the low mantissa bits of t */
    const cpu_f4 magic = cpu_splat(12582912.0f);
    cpu_f4 t = xc * cpu_splat(1.44269504088896341f) + magic;
    cpu_f4 kf = t - magic;
    cpu_f4 r = xc - kf * cpu_splat(0.693359375f); /* ln2 high part: k*C1 is exact */
    r = r - kf * cpu_splat(-2.12194440e-4f);      /* ln2 low part */
    cpu_f4 p = cpu_splat(1.9875691500e-4f);
    p = p * r + cpu_splat(1.3981999507e-3f);
    p = p * r + cpu_splat(8.3334519073e-3f);
    p = p * r + cpu_splat(4.1665795894e-2f);
    p = p * r + cpu_splat(1.6666665459e-1f);
    p = p * r + cpu_splat(5.0000001201e-1f);
    p = p * r * r + r + cpu_splat(1.0f);
    cpu_i4 k = (cpu_i4)t - (cpu_i4)magic;
    cpu_i4 k1 = k >> 1, k2 = k - k1;
    cpu_f4 y = p * (cpu_f4)((k1 + 127) << 23) * (cpu_f4)((k2 + 127) << 23);
    y = cpu_select(x < lo, cpu_splat(0.0f), y);
    return cpu_select(x > hi, cpu_splat(__builtin_inff()), y);
}

/* The same function on one value (loop tails, test): identical results by construction. */
static inline float cpu_expf(float x) {
    return cpu_expf4(cpu_splat(x))[0];
}

static inline float cpu_silu(float y) {
    return y / (1.0f + cpu_expf(-y));
}

/* o[i] = silu(o[i]) for i < n. */
static inline void cpu_silu_inplace(float *o, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        cpu_f4 v = cpu_load4(o + i);
        cpu_store4(o + i, v / (cpu_splat(1.0f) + cpu_expf4(-v)));
    }
    for (; i < n; i++) o[i] = cpu_silu(o[i]);
}

#endif /* EDM_CPU_INTERNAL_H */
