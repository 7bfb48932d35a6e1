/*
 * cpu_norm.c - group_norm of the CPU backend (spec 1.3 and the block forms of 1.5; ops.h),
 * on NHWC activations.
 *
 * In NHWC a group is a run of Cg contiguous channels inside each pixel. One work item is a
 * sample and a run of whole groups (all of them when the batch keeps the team busy, else
 * the groups split into as many runs as needed), so an item owns its statistics and needs
 * no barrier or shared scratch; per pixel it reads one contiguous run of channels:
 *  1. per channel, sums of d = v - k[c] and d^2 in double, vectorised along the channels,
 *     where v = in + pre_add[n,c] (rounded to fp32 first, as PyTorch adds the embedding to
 *     h before the norm) and the pivot k[c] is the channel's value at the first pixel: a
 *     shift that keeps the sums free of the E[x^2] - mean^2 cancellation;
 *  2. per group, the channels' means and centred sums of squares combine (the
 *     parallel-variance formula: M2 = sum M2_c + P * sum (mean_c - mean)^2), in double;
 *  3. y = act(shift + (((v - mu) * a + b) * scale)) with per-channel constants
 *     (a = rstd * gamma), GN_SILU_PIXELS pixels at a time so the silu finds them in cache.
 * Two passes over the item's values. Statistics in double stay well inside the ~1e-6
 * relative agreement with PyTorch's fp32 sums. out may alias in: every element is read
 * before the same element is written.
 */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"

#define GN_SILU_PIXELS 16 /* pixels normalised before their silu pass */

/* The per-item arguments of group_norm (see the file comment). */
struct gn_args {
    const float *x, *ga, *be, *pa, *ss;
    float *y;
    int C, G, runs, act_silu;
    int64_t P;
    float eps;
};

/* One work item: sample it / runs, its run of groups; scratch holds 11 values per channel.
 * Cloned for AVX-512 and AVX2: the double sums and the per-channel passes vectorise along
 * the channels at the CPU's own width (the build's baseline SSE2 has two doubles a vector). */
EDM_CPU_CLONES static void gn_item(const struct gn_args *args, int it, double *scratch) {
    const float *x = args->x, *ga = args->ga, *be = args->be, *pa = args->pa, *ss = args->ss;
    const int C = args->C, G = args->G, Cg = C / G, runs = args->runs, act_silu = args->act_silu;
    const int64_t P = args->P;
    const int n = it / runs, g0 = G * (it % runs) / runs, g1 = G * (it % runs + 1) / runs;
    const int c0 = g0 * Cg, cw = (g1 - g0) * Cg; /* channels [c0, c0 + cw) */
    double *s1 = scratch, *s2 = s1 + cw;
    float *k = (float *)(s2 + cw), *ad = k + cw, *mu = ad + cw, *a = mu + cw, *b = a + cw,
          *sc = b + cw, *sh = sc + cw;
    const float *xn = x + (int64_t)n * P * C + c0;
    float *yn = args->y + (int64_t)n * P * C + c0;
    for (int c = 0; c < cw; c++) {
        ad[c] = pa ? pa[(int64_t)n * C + c0 + c] : 0.0f;
        k[c] = xn[c] + ad[c];
        s1[c] = s2[c] = 0.0;
    }
    for (int64_t p = 0; p < P; p++) {
        const float *r = xn + p * C;
#pragma omp simd
        for (int c = 0; c < cw; c++) {
            const double d = (double)(r[c] + ad[c]) - (double)k[c];
            s1[c] += d;
            s2[c] += d * d;
        }
    }
    for (int g = 0; g < g1 - g0; g++) {
        double mean = 0, m2 = 0;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) mean += (double)k[c] + s1[c] / (double)P;
        mean /= Cg;
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
            const double mc = (double)k[c] + s1[c] / (double)P;
            m2 += (s2[c] - s1[c] * s1[c] / (double)P) + (double)P * (mc - mean) * (mc - mean);
        }
        const double var = m2 / ((double)Cg * (double)P);
        const double rstd = 1.0 / sqrt((var > 0 ? var : 0) + (double)args->eps);
        for (int c = g * Cg; c < (g + 1) * Cg; c++) {
            const int ch = c0 + c;
            mu[c] = (float)mean;
            a[c] = (float)(rstd * ga[ch]);
            b[c] = be[ch];
            /* scale_shift: y = shift + y * (scale + 1) */
            sc[c] = ss ? ss[(int64_t)n * 2 * C + ch] + 1.0f : 1.0f;
            sh[c] = ss ? ss[(int64_t)n * 2 * C + C + ch] : 0.0f;
        }
    }
    for (int64_t q0 = 0; q0 < P; q0 += GN_SILU_PIXELS) {
        const int64_t q1 = q0 + GN_SILU_PIXELS < P ? q0 + GN_SILU_PIXELS : P;
        for (int64_t p = q0; p < q1; p++) {
            const float *r = xn + p * C;
            float *w = yn + p * C;
            if (ss) {
#pragma omp simd
                for (int c = 0; c < cw; c++)
                    w[c] = sh[c] + (((r[c] + ad[c]) - mu[c]) * a[c] + b[c]) * sc[c];
            } else {
#pragma omp simd
                for (int c = 0; c < cw; c++) w[c] = ((r[c] + ad[c]) - mu[c]) * a[c] + b[c];
            }
        }
        if (!act_silu) continue;
        if (cw == C) /* the pixels' runs are adjacent */
            edm_cpu_silu_inplace(yn + q0 * C, (q1 - q0) * C);
        else
            for (int64_t p = q0; p < q1; p++) edm_cpu_silu_inplace(yn + p * C, cw);
    }
}

int edm_cpu_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                       const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                       const edm_tensor *scale_shift, int act_silu, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, gamma, beta, pre_add, scale_shift);
    const int N = in->n, C = in->c, G = groups;
    const int64_t P = (int64_t)in->h * in->w;
    const float *x = cpu_f(in), *ga = cpu_f(gamma), *be = cpu_f(beta);
    const float *pa = pre_add ? cpu_f(pre_add) : NULL;
    const float *ss = scale_shift ? cpu_f(scale_shift) : NULL;
    float *y = cpu_f(out);
    const int team = edm_cpu_team(cx, (double)N * C * P, 32768.0);
    int runs = N >= team ? 1 : (team + N - 1) / N; /* runs of groups per sample */
    if (runs > G) runs = G;
    /* per thread: s1, s2 (double) and k, add, mu, a, b, scale, shift (fp32) per channel */
    if (edm_cpu_scratch_reserve(cx, (size_t)C * 11, msg)) return 1;
    const struct gn_args args = {x, ga, be, pa, ss, y, C, G, runs, act_silu, P, eps};
#pragma omp parallel for num_threads(team) schedule(static)
    for (int it = 0; it < N * runs; it++)
        gn_item(&args, it, (double *)cx->scratch[omp_get_thread_num()]);
    return 0;
}
