/*
 * cpu_vec_impl.h - the exp-based row kernels of the CPU backend (silu, softmax), written once
 * over a generic vector type and included by cpu_vec.c once per width: 4 lanes (SSE2/NEON,
 * any CPU), 8 lanes compiled for AVX2 and 16 for AVX-512 (picked at run time). No include
 * guard on purpose.
 *
 * The includer defines: VF (float vector), VI (int32 vector, same lane count), VL (lanes),
 * VATTR (function attributes, e.g. a target) and VNAME(x) (a name suffixed for this width);
 * the header undefines them at its end, ready for the next width.
 * Every width performs the same IEEE operations in the same order (no FMA contraction under
 * -std=c11), so exp and silu are bit-identical across widths; softmax's double sum is
 * reduced lane-wise, so its probabilities may differ by an ulp. test_ops checks both.
 */

VATTR static inline VF VNAME(splat)(float v) {
    return (VF){0} + v;
}
VATTR static inline VF VNAME(load)(const float *p) {
    VF v;
    __builtin_memcpy(&v, p, sizeof v); /* unaligned */
    return v;
}
VATTR static inline void VNAME(store)(float *p, VF v) {
    __builtin_memcpy(p, &v, sizeof v);
}
/* m ? a : b per lane; m from a vector comparison (all ones or all zeros). */
VATTR static inline VF VNAME(select)(VI m, VF a, VF b) {
    return (VF)((m & (VI)a) | (~m & (VI)b));
}

/*
 * exp(x) in fp32: x = k*ln2 + r with a two-constant Cody-Waite split, the Cephes degree-7
 * polynomial for e^r on |r| <= ln2/2, and 2^k built in the exponent bits (two factors, so
 * k = 128 does not overflow early). About 1 ulp over the normal range; 0 below -87.34 (no
 * denormals), +inf above 88.72. Selects, not branches: GCC does not if-convert range clamps
 * under the default -ftrapping-math, so a scalar exp in a loop would stay scalar.
 */
VATTR static inline VF VNAME(exp)(VF x) {
    const VF hi = VNAME(splat)(88.7228f), lo = VNAME(splat)(-87.3365f);
    VF xc = VNAME(select)(x < lo, lo, x);
    xc = VNAME(select)(xc > hi, hi, xc);
    /* k = round(x / ln2): adding 1.5*2^23 leaves k in the low mantissa bits of t */
    const VF magic = VNAME(splat)(12582912.0f);
    const VF t = xc * 1.44269504088896341f + magic;
    const VF kf = t - magic;
    VF r = xc - kf * 0.693359375f; /* ln2 high part: k*C1 is exact */
    r = r - kf * -2.12194440e-4f;  /* ln2 low part */
    VF p = VNAME(splat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const VI k = (VI)t - (VI)magic;
    const VI k1 = k >> 1, k2 = k - k1;
    VF y = p * (VF)((k1 + 127) << 23) * (VF)((k2 + 127) << 23);
    y = VNAME(select)(x < lo, VNAME(splat)(0.0f), y);
    return VNAME(select)(x > hi, VNAME(splat)(__builtin_inff()), y);
}

/* o[i] = o[i] / (1 + exp(-o[i])). The tail goes through a zero-padded vector, so every
 * element sees the same arithmetic. */
VATTR static void VNAME(silu)(float *o, int64_t n) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) {
        const VF v = VNAME(load)(o + i);
        VNAME(store)(o + i, v / (1.0f + VNAME(exp)(-v)));
    }
    if (i < n) {
        float t[VL] = {0};
        __builtin_memcpy(t, o + i, (size_t)(n - i) * sizeof(float));
        const VF v = VNAME(load)(t);
        VNAME(store)(t, v / (1.0f + VNAME(exp)(-v)));
        __builtin_memcpy(o + i, t, (size_t)(n - i) * sizeof(float));
    }
}

/* In-place softmax of n > 0 scores: max subtraction, fp32 exp, the sum in double, then one
 * multiply by the fp32 reciprocal (as PyTorch's CPU softmax). Returns that reciprocal with
 * s[] holding the exps, unless `scale` (then s[] holds the probabilities). */
VATTR static inline float VNAME(softmax_exp)(float *s, int64_t n, int scale) {
    float m = s[0];
    int64_t i = 0;
    if (n >= VL) {
        VF mv = VNAME(load)(s);
        for (i = VL; i + VL <= n; i += VL) {
            const VF v = VNAME(load)(s + i);
            mv = VNAME(select)(v > mv, v, mv);
        }
        for (int l = 0; l < VL; l++) m = mv[l] > m ? mv[l] : m;
    }
    for (; i < n; i++) m = s[i] > m ? s[i] : m;
    const VF mv = VNAME(splat)(m);
    for (i = 0; i + VL <= n; i += VL) VNAME(store)(s + i, VNAME(exp)(VNAME(load)(s + i) - mv));
    if (i < n) {
        float t[VL] = {0};
        __builtin_memcpy(t, s + i, (size_t)(n - i) * sizeof(float));
        VNAME(store)(t, VNAME(exp)(VNAME(load)(t) - mv));
        __builtin_memcpy(s + i, t, (size_t)(n - i) * sizeof(float));
    }
    double sum = 0;
#pragma omp simd reduction(+ : sum)
    for (i = 0; i < n; i++) sum += (double)s[i];
    const float inv = (float)(1.0 / sum);
    if (scale)
#pragma omp simd
        for (i = 0; i < n; i++) s[i] *= inv;
    return inv;
}

VATTR static void VNAME(softmax)(float *s, int64_t n) {
    VNAME(softmax_exp)(s, n, 1);
}

/* The same softmax with the probabilities rounded to bf16 into out (s[] is left with the
 * exps): the operand of bf16 attention's second GEMM (unused at 16 lanes, which have a
 * faster one). */
__attribute__((unused)) VATTR static void VNAME(softmax_bf16)(float *s, uint16_t *out, int64_t n) {
    const float inv = VNAME(softmax_exp)(s, n, 0);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) out[i] = edm_cpu_bf16(s[i] * inv);
}

#undef VF
#undef VI
#undef VL
#undef VATTR
#undef VNAME
