/*
 * cpu_vec.c - the CPU backend's exp-based row kernels (silu for group_norm and linear,
 * softmax for attention), instantiated from cpu_vec_impl.h at three widths:
 *   - 4 lanes with the build's baseline instructions (SSE2 on x86-64, NEON on arm64);
 *   - 8 lanes compiled for AVX2 and 16 for AVX-512 on x86-64, the widest the CPU has chosen
 *     at run time: the build targets baseline x86-64, and these loops are compute-bound
 *     (measured on Zen 3: silu 2.4 -> 1.2 ns per element at 8 lanes), unlike the
 *     memory-bound element-wise ops.
 * All widths give the same exp and silu bit for bit (same operations, no FMA), so the tests
 * cover any of them.
 */
#include <stdint.h>

#include "cpu_internal.h"

/* ---- 4 lanes, any CPU ------------------------------------------------------------------- */
typedef float vf4 __attribute__((vector_size(16)));
typedef int32_t vi4 __attribute__((vector_size(16)));
#define VF vf4
#define VI vi4
#define VL 4
#define VATTR
#define VNAME(x) x##_4
#include "cpu_vec_impl.h"

/* ---- 8 lanes, AVX2 ---------------------------------------------------------------------- */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CPU_VEC_AVX2 1
typedef float vf8 __attribute__((vector_size(32)));
typedef int32_t vi8 __attribute__((vector_size(32)));
#define VF vf8
#define VI vi8
#define VL 8
#define VATTR __attribute__((target("avx2")))
#define VNAME(x) x##_8
#include "cpu_vec_impl.h"
#else
#define CPU_VEC_AVX2 0
#endif

/* ---- 16 lanes, AVX-512 ------------------------------------------------------------------- */
#if CPU_VEC_AVX2
typedef float vf16 __attribute__((vector_size(64)));
typedef int32_t vi16 __attribute__((vector_size(64)));
#define VF vf16
#define VI vi16
#define VL 16
#define VATTR __attribute__((target("avx512f")))
#define VNAME(x) x##_16
#include "cpu_vec_impl.h"
#endif

/* ---- bf16 attention's softmax, AVX-512 -------------------------------------------------- */
#if CPU_VEC_AVX2
#include <immintrin.h>

#define V512 __attribute__((target("avx512f")))

/* 2^t for t <= 0 (or NaN): t = k + f with k = round(t), |f| <= 1/2; 2^f by its degree-5
 * Taylor polynomial (relative error 2.4e-6, far below bf16's 2^-8) and the scaling by 2^k
 * by vscalefps, which also gives 0 for any t far below the normal range. */
V512 static inline __m512 exp2_bf16_grade(__m512 t) {
    const __m512 k = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, k);
    __m512 p = _mm512_set1_ps(1.3333558e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, k);
}

/* edm_cpu_bf16 on 16 floats, operation for operation (round to nearest even; inf stays inf,
 * NaN stays NaN with its sign): the scalar function, vectorised by the compiler here, made
 * the softmax 1.5x slower. */
V512 static inline __m512i bf16_round16(__m512 v) {
    const __m512i u = _mm512_castps_si512(v), hi = _mm512_srli_epi32(u, 16);
    const __m512i lsb = _mm512_and_si512(hi, _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    const __m512i expo = _mm512_set1_epi32(0x7f800000);
    const __mmask16 special = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, expo), expo);
    const __mmask16 low = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0xffff));
    const __m512i quiet = _mm512_mask_or_epi32(hi, low, hi, _mm512_set1_epi32(0x40));
    return _mm512_mask_mov_epi32(rounded, special, quiet);
}

/*
 * The softmax of bf16 attention, whose probabilities are rounded to bf16 (relative error up
 * to 2^-8) before the second GEMM: so its exp needs only bf16 accuracy, and its sum fp32
 * (16 lanes of partial sums). Three passes over the row, the exps kept in s: the max, the
 * exps and their sum, the scaled bf16s. About 5x the throughput of the fp32 softmax's exact
 * exp, which dominated bf16 attention once its GEMMs ran on AMX.
 */
V512 static void softmax_bf16_fast(float *s, uint16_t *out, int64_t n) {
    const int64_t full = n & ~(int64_t)15;
    const __mmask16 tail = (__mmask16)((1u << (n - full)) - 1u);
    __m512 m = _mm512_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < full; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + i));
    if (tail) m = _mm512_max_ps(m, _mm512_mask_loadu_ps(m, tail, s + full));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    const __m512 log2e = _mm512_set1_ps(1.44269504088896341f);
    __m512 sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < full; i += 16) {
        const __m512 x = _mm512_loadu_ps(s + i);
        const __m512 e = exp2_bf16_grade(_mm512_mul_ps(_mm512_sub_ps(x, mx), log2e));
        _mm512_storeu_ps(s + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (tail) {
        const __m512 x = _mm512_mask_loadu_ps(mx, tail, s + full); /* padding: exp(0) */
        const __m512 e = exp2_bf16_grade(_mm512_mul_ps(_mm512_sub_ps(x, mx), log2e));
        _mm512_mask_storeu_ps(s + full, tail, e);
        sum = _mm512_mask_add_ps(sum, tail, sum, e);
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
    for (int64_t i = 0; i < full; i += 16) {
        const __m512i h = bf16_round16(_mm512_mul_ps(_mm512_loadu_ps(s + i), inv));
        _mm256_storeu_si256((__m256i *)(out + i), _mm512_cvtepi32_epi16(h));
    }
    if (tail) {
        const __m512i h = bf16_round16(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail, s + full), inv));
        _mm512_mask_cvtepi32_storeu_epi16(out + full, tail, h);
    }
}
#endif

int edm_cpu_vector_lanes(void) {
#if CPU_VEC_AVX2
    /* __builtin_cpu_supports also checks that the OS saves the wider registers */
    if (__builtin_cpu_supports("avx512f")) return 16;
    if (__builtin_cpu_supports("avx2")) return 8;
#endif
    return 4;
}

float edm_cpu_expf(float x) {
    return exp_4(splat_4(x))[0];
}

void edm_cpu_silu_lanes(int lanes, float *o, int64_t n) {
#if CPU_VEC_AVX2
    if (lanes > edm_cpu_vector_lanes()) lanes = edm_cpu_vector_lanes();
    if (lanes >= 16) {
        silu_16(o, n);
        return;
    }
    if (lanes >= 8) {
        silu_8(o, n);
        return;
    }
#endif
    (void)lanes;
    silu_4(o, n);
}

void edm_cpu_softmax_lanes(int lanes, float *s, int64_t n) {
#if CPU_VEC_AVX2
    if (lanes > edm_cpu_vector_lanes()) lanes = edm_cpu_vector_lanes();
    if (lanes >= 16) {
        softmax_16(s, n);
        return;
    }
    if (lanes >= 8) {
        softmax_8(s, n);
        return;
    }
#endif
    (void)lanes;
    softmax_4(s, n);
}

void edm_cpu_softmax_row_bf16(float *s, uint16_t *out, int64_t n) {
#if CPU_VEC_AVX2
    const int lanes = edm_cpu_vector_lanes();
    if (lanes >= 16) {
        softmax_bf16_fast(s, out, n);
        return;
    }
    if (lanes >= 8) {
        softmax_bf16_8(s, out, n);
        return;
    }
#endif
    softmax_bf16_4(s, out, n);
}

void edm_cpu_silu_inplace(float *o, int64_t n) {
    edm_cpu_silu_lanes(edm_cpu_vector_lanes(), o, n);
}

void edm_cpu_softmax_row(float *s, int64_t n) {
    edm_cpu_softmax_lanes(edm_cpu_vector_lanes(), s, n);
}
