/*
 * cpu_norm.c - group_norm of the CPU backend (spec 1.3 and the block forms of 1.5; ops.h).
 *
 * One (sample, group) per iteration: the group's channels are contiguous in NCHW, so the
 * Cg*H*W values (32 KiB on CIFAR's 32x32 levels) stay in cache across the three passes:
 * mean, centred variance, and the normalise/affine/scale_shift/silu pass that writes out.
 * Statistics accumulate in double (four independent sums so the adds pipeline), which keeps
 * them well inside the ~1e-6 relative agreement with PyTorch's fp32 Welford/cascade sums;
 * the centred second pass avoids the E[x^2] - mean^2 cancellation.
 * The values normalised are v = in + pre_add[n,c], rounded to fp32 first, as PyTorch adds
 * the embedding to h before calling the norm. out may alias in: every element is read
 * before the same element is written.
 */
#include <math.h>
#include <omp.h>

#include "cpu_internal.h"

/* sum of (r[p] + add - centre)^k for k = 1 (sq = 0) or 2 (sq = 1), in double. */
static double row_sum(const float *r, int64_t n, float add, double centre, int sq) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t p = 0;
    if (sq) {
        for (; p + 4 <= n; p += 4) {
            double d0 = (double)(r[p] + add) - centre, d1 = (double)(r[p + 1] + add) - centre;
            double d2 = (double)(r[p + 2] + add) - centre, d3 = (double)(r[p + 3] + add) - centre;
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
        }
        for (; p < n; p++) {
            double d = (double)(r[p] + add) - centre;
            s0 += d * d;
        }
    } else {
        for (; p + 4 <= n; p += 4) {
            s0 += (double)(r[p] + add);
            s1 += (double)(r[p + 1] + add);
            s2 += (double)(r[p + 2] + add);
            s3 += (double)(r[p + 3] + add);
        }
        for (; p < n; p++) s0 += (double)(r[p] + add);
    }
    return (s0 + s1) + (s2 + s3);
}

/* o[p] = act(shift + (((r[p] + add) - mu) * a + b) * sc) over one channel; o may be r.
 * Two passes over the (L1-resident) row: fusing the silu into the first measured slower,
 * as the affine constants and the exp's together spill the vector registers. */
static void norm_row(float *o, const float *r, int64_t n, float add, float mu, float a, float b,
                     int has_ss, float sc, float sh, int silu) {
    if (has_ss) {
#pragma omp simd
        for (int64_t p = 0; p < n; p++) o[p] = sh + (((r[p] + add) - mu) * a + b) * sc;
    } else {
#pragma omp simd
        for (int64_t p = 0; p < n; p++) o[p] = ((r[p] + add) - mu) * a + b;
    }
    if (silu) edm_cpu_silu_inplace(o, n);
}

int edm_cpu_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                       const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                       const edm_tensor *scale_shift, int act_silu, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, gamma, beta, pre_add, scale_shift);
    const int N = in->n, C = in->c, G = groups, Cg = C / G;
    const int64_t HW = (int64_t)in->h * in->w;
    const float *x = cpu_f(in), *ga = cpu_f(gamma), *be = cpu_f(beta);
    const float *pa = pre_add ? cpu_f(pre_add) : NULL;
    const float *ss = scale_shift ? cpu_f(scale_shift) : NULL;
    float *y = cpu_f(out);
    const double count = (double)Cg * HW;
    int team = edm_cpu_team(cx, (double)N * C * HW, 32768.0);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int item = 0; item < N * G; item++) {
        const int n = item / G, g = item % G;
        const int64_t first = ((int64_t)n * C + (int64_t)g * Cg) * HW; /* channel g*Cg of n */
        double sum = 0;
        for (int c = 0; c < Cg; c++)
            sum += row_sum(x + first + c * HW, HW, pa ? pa[n * C + g * Cg + c] : 0.0f, 0.0, 0);
        const double mean = sum / count;
        double sq = 0;
        for (int c = 0; c < Cg; c++)
            sq += row_sum(x + first + c * HW, HW, pa ? pa[n * C + g * Cg + c] : 0.0f, mean, 1);
        const double rstd = 1.0 / sqrt(sq / count + (double)eps);
        const float mu = (float)mean;
        for (int c = 0; c < Cg; c++) {
            const int ch = g * Cg + c;
            const float add = pa ? pa[n * C + ch] : 0.0f;
            const float a = (float)(rstd * ga[ch]), b = be[ch];
            /* scale_shift: y = shift + y * (scale + 1) */
            const float sc = ss ? ss[(int64_t)n * 2 * C + ch] + 1.0f : 1.0f;
            const float sh = ss ? ss[(int64_t)n * 2 * C + C + ch] : 0.0f;
            norm_row(y + first + c * HW, x + first + c * HW, HW, add, mu, a, b, ss != NULL, sc, sh,
                     act_silu);
        }
    }
    return 0;
}
