/*
 * cpu_internal.h - private state and helpers shared by the CPU backend's files
 * (backend_cpu.c, cpu_conv.c, cpu_dnnl.c, cpu_winograd.c, cpu_norm.c, cpu_matmul.c,
 * cpu_attention.c, cpu_vec.c). Nothing outside those files includes it.
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
#include <string.h>

#include "ops.h"

/* The most threads one backend uses: OpenBLAS 0.3.21 (MAX_THREADS=64) keeps a fixed table of
 * per-call buffers, so more concurrent single-threaded calls than that are not safe. */
#define EDM_CPU_MAX_THREADS 64

struct cpu_dnnl;  /* cpu_dnnl.c: oneDNN engine, primitive and weight caches */
struct dnnl_prim; /* one cached oneDNN primitive (cpu_dnnl.c) */

struct cpu_ctx {
    int threads;
    int bf16;        /* precision bf16: conv operands rounded to bf16 (oneDNN), fp32 elsewhere */
    int onednn;      /* oneDNN convs and GEMMs; 0 (EDM_CPU_ONEDNN=0): im2col + OpenBLAS */
    int winograd;    /* 3x3 convs by F(2x2,3x3) (cpu_winograd.c): 1 in fp32 (the default),
                      * 2 in bf16 too (EDM_CPU_WINOGRAD=1), 0 never (=0) */
    int attn_bf16_refused; /* oneDNN refused bf16 attention's matmuls: fp32 attention */
    long attn_bf16_calls;  /* attentions run by the bf16 path (counter "attention_bf16") */
    struct cpu_dnnl *dnnl; /* made on the first conv, NULL until then */
    long scratch_allocs;   /* growths of any scratch (counter "scratch_allocs") */
    /* Per-thread scratch (im2col columns, GEMM tiles, attention scores), 64-byte aligned,
     * grown by edm_cpu_scratch_reserve before a parallel region and kept: no allocation per
     * op in steady state. */
    float *scratch[EDM_CPU_MAX_THREADS];
    size_t scratch_cap[EDM_CPU_MAX_THREADS]; /* floats */
    float *shared; /* one buffer for the whole team (Winograd's V and M), grown likewise */
    size_t shared_cap;
};

/* Makes every thread's scratch at least `floats` long. Returns 0, or non-zero with msg set. */
int edm_cpu_scratch_reserve(struct cpu_ctx *cx, size_t floats, char *msg);

/* The shared scratch, at least `floats` long (contents not kept); NULL with msg set. */
float *edm_cpu_shared_scratch(struct cpu_ctx *cx, size_t floats, char *msg);

/* Threads worth using for `work` units of roughly `grain` units each (at least 1). */
int edm_cpu_team(const struct cpu_ctx *cx, double work, double grain);

/* One single-threaded GEMM on the calling thread (dnnl_sgemm, or cblas_sgemm when oneDNN is
 * off), row-major, arguments as edm_cpu_sgemm. */
void edm_cpu_gemm1(const struct cpu_ctx *cx, int trans_a, int trans_b, int M, int N, int K,
                   float alpha, const float *A, int lda, const float *B, int ldb, float beta,
                   float *C, int ldc);

/*
 * Row-major C[M,N] = alpha * op(A)[M,K] . op(B)[K,N] + beta * C, split across the team by
 * columns (or rows when N is small); each piece is one edm_cpu_gemm1.
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

/*
 * conv2d through oneDNN (cpu_dnnl.c) on NHWC activations: returns 0 when done, 1 when
 * oneDNN refuses the shape (nothing written; the caller uses im2col + GEMM), -1 on an
 * error (msg set).
 */
int edm_cpu_dnnl_conv2d(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *in,
                        const edm_tensor *weight, const edm_tensor *bias, int pad,
                        const edm_tensor *residual, float out_scale, char *msg);
/* The conv weights [Co,Ci,k,k] rearranged once to [ky][kx][ci][co] fp32 (the im2col
 * fallback's GEMM operand), cached like the primitives' weights; NULL with msg set on failure. */
const float *edm_cpu_dnnl_weights_hwio(struct cpu_ctx *cx, const edm_tensor *weight, char *msg);
/* Winograd's 16 GEMMs M[e] = V[e] . U[e] (V [16][len][Ci], bf16 when the backend is, else
 * fp32; M [16][len][Co] fp32; U [16][Ci][Co] made from the 3x3 weights and kept in oneDNN's
 * blocked layout, once per weight tensor), as oneDNN matmuls on the backend's threads; 0, or
 * 1 with msg set. */
int edm_cpu_dnnl_wino_gemm(struct cpu_ctx *cx, const edm_tensor *weight, const void *V,
                           float *M, int len, char *msg);
/* bf16 attention's matmuls (cpu_attention.c), one thread each, for blocks of `rows` query
 * rows of one batch-head (and of rows_last rows, the last block, when not 0):
 *   mm[0] S [rows][P] fp32 = alpha * q [rows][Ch] . k^T   (k [P][Ch])
 *   mm[1] o [rows][Ch] fp32, rows C apart = p [rows][P] . v [P][Ch]
 * (mm[2], mm[3]: the same for rows_last), with q, k, p, v bf16; made or found in the cache,
 * with a oneDNN stream per team thread. *scratch: the scratchpad bytes any of them needs.
 * 0 done, 1 refused (or only oneDNN's reference code has them), -1 an error (msg set).
 * edm_cpu_dnnl_attention_run runs one of them on the calling team thread: 0, or 1 with msg
 * set. The primitives stay valid until the next conv or matmul is made. */
int edm_cpu_dnnl_attention_prims(struct cpu_ctx *cx, int rows, int rows_last, int P, int Ch, int C,
                                 float alpha, struct dnnl_prim *mm[4], size_t *scratch,
                                 char *msg);
int edm_cpu_dnnl_attention_run(struct cpu_ctx *cx, const struct dnnl_prim *mm, const void *a,
                               const void *b, float *dst, void *scratch, char *msg);
/* Drops cached reordered weights made from memory in [ptr, ptr + bytes) (freed or rewritten),
 * or from the allocation ptr; frees the whole state. All accept NULL. */
void edm_cpu_dnnl_forget(struct cpu_dnnl *d, const void *ptr, size_t bytes);
void edm_cpu_dnnl_forget_alloc(struct cpu_dnnl *d, void *ptr);
void edm_cpu_dnnl_free(struct cpu_dnnl *d);

/* Winograd F(2x2, 3x3) (cpu_winograd.c): whether it runs this conv (3x3, pad 1, at least 16
 * channels in and out); U[16][Ci][Co] from the OIHW weights w; the conv itself,
 * 0 or 1 with msg set. */
int edm_cpu_winograd_applies(const struct cpu_ctx *cx, const edm_tensor *in,
                             const edm_tensor *weight, const edm_tensor *out, int pad);
void edm_cpu_winograd_weights(float *U, const float *w, int Co, int Ci);
int edm_cpu_winograd_conv2d(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *in,
                            const edm_tensor *weight, const edm_tensor *bias,
                            const edm_tensor *residual, float out_scale, char *msg);

/* Returns 0 when every non-NULL tensor is fp32 with data, else writes msg and returns 1. */
int edm_cpu_check_f32(char *msg, const char *what, int n, const edm_tensor *const *t);
#define CPU_CHECK_F32(msg, ...)                                                                    \
    do {                                                                                           \
        const edm_tensor *const t_[] = {__VA_ARGS__};                                              \
        if (edm_cpu_check_f32(msg, "operand", (int)(sizeof t_ / sizeof t_[0]), t_)) return 1;      \
    } while (0)

static inline float *cpu_f(const edm_tensor *t) {
    return (float *)t->data;
}

/* Loops that should vectorise at the CPU's own width: the build targets baseline x86-64, so
 * they are cloned for AVX-512 and AVX2 and the loader picks one (GCC's target_clones). */
#if defined(__x86_64__) && defined(__GNUC__)
#define EDM_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define EDM_CPU_CLONES
#endif

/* The bf16 of x, round to nearest even (inf stays inf, NaN stays NaN). Branch-free, so that
 * loops over it vectorise. */
static inline uint16_t edm_cpu_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t special = (u >> 16) | ((u & 0xffffu) ? 0x40u : 0u); /* inf, NaN */
    return (uint16_t)((u & 0x7f800000u) == 0x7f800000u ? special : rounded);
}

/*
 * Row kernels built on a vectorized fp32 exp (cpu_vec.c) at the widest width the CPU has
 * (16 AVX-512 lanes, 8 AVX2 lanes, else 4 baseline lanes), with the same results at each.
 */
void edm_cpu_silu_inplace(float *o, int64_t n); /* o[i] = silu(o[i]) */
void edm_cpu_softmax_row(float *s, int64_t n);  /* in place, n > 0 */
/* softmax of s[0..n) rounded to bf16 into out; s is left holding scratch values */
void edm_cpu_softmax_row_bf16(float *s, uint16_t *out, int64_t n);
float edm_cpu_expf(float x); /* the same exp on one value (~1 ulp) */
/* For the tests: the widest width in use (4, 8 or 16 lanes), and the kernels at a width no
 * wider than that. */
int edm_cpu_vector_lanes(void);
void edm_cpu_silu_lanes(int lanes, float *o, int64_t n);
void edm_cpu_softmax_lanes(int lanes, float *s, int64_t n);

#endif /* EDM_CPU_INTERNAL_H */
