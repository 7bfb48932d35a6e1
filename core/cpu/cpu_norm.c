/*
 * cpu_norm.c - group_norm of the CPU backend (spec 1.3 and the block forms of 1.5; ops.h),
 * on NHWC activations.
 *
 * In NHWC a group is a run of Cg contiguous channels inside each pixel, so the statistics
 * are gathered for all channels of a sample at once, vectorised along the channels:
 *  1. each (sample, block of pixels) item sums d = v - k[c] and d^2 per channel in double,
 *     where v = in + pre_add[n,c] (rounded to fp32 first, as PyTorch adds the embedding to
 *     h before the norm) and the pivot k[c] is the channel's value at the sample's first
 *     pixel: a shift that keeps the sums free of the E[x^2] - mean^2 cancellation;
 *  2. per sample, the blocks' sums give each channel's mean and centred sum of squares,
 *     which combine into the group's (the parallel-variance formula: M2 = sum M2_c +
 *     P * sum (mean_c - mean)^2), all in double;
 *  3. each item writes y = act(shift + (((v - mu) * a + b) * scale)) over its pixels, with
 *     per-channel constants (a = rstd * gamma), then silu over its whole block.
 * Two passes over memory (the NCHW version took three over one cache-resident group).
 * Statistics in double stay well inside the ~1e-6 relative agreement with PyTorch's fp32
 * sums. out may alias in: every element is read before the same element is written.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

#define GN_BLOCK_PIXELS 64 /* pixels per item at least */
#define GN_SILU_PIXELS 16  /* pixels normalised before their silu pass */

int edm_cpu_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *gamma,
                       const edm_tensor *beta, int groups, float eps, const edm_tensor *pre_add,
                       const edm_tensor *scale_shift, int act_silu, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, gamma, beta, pre_add, scale_shift);
    const int N = in->n, C = in->c, G = groups, Cg = C / G;
    const int64_t P = (int64_t)in->h * in->w;
    const float *x = cpu_f(in), *ga = cpu_f(gamma), *be = cpu_f(beta);
    const float *pa = pre_add ? cpu_f(pre_add) : NULL;
    const float *ss = scale_shift ? cpu_f(scale_shift) : NULL;
    float *y = cpu_f(out);
    const int team = edm_cpu_team(cx, (double)N * C * P, 32768.0);
    /* Items: blocks of pixels, enough to keep the team busy when the batch is small. */
    int64_t nb = N >= team ? 1 : (team + N - 1) / N;
    if (nb > P / GN_BLOCK_PIXELS) nb = P / GN_BLOCK_PIXELS > 1 ? P / GN_BLOCK_PIXELS : 1;
    const int64_t items = (int64_t)N * nb;
    /* Shared scratch (thread 0's): per item 2C double sums, then per sample and channel the
     * pivot and five fp32 constants (add, mu, a, b, scale, shift). */
    const size_t sum_floats = (size_t)items * 2 * C * 2, par_floats = (size_t)N * C * 7;
    if (edm_cpu_scratch_reserve(cx, sum_floats + par_floats, msg)) return 1;
    double *sums = (double *)cx->scratch[0];
    float *par = cx->scratch[0] + sum_floats;
    float *piv = par, *add = par + (size_t)N * C, *mu = add + (size_t)N * C,
          *a = mu + (size_t)N * C, *bb = a + (size_t)N * C, *sc = bb + (size_t)N * C,
          *sh = sc + (size_t)N * C;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) {
            const int64_t i = (int64_t)n * C + c;
            add[i] = pa ? pa[i] : 0.0f;
            piv[i] = x[(int64_t)n * P * C + c] + add[i];
        }

#pragma omp parallel num_threads(team)
    {
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int n = (int)(it / nb);
            const int64_t p0 = P * (it % nb) / nb, p1 = P * (it % nb + 1) / nb;
            double *s1 = sums + it * 2 * C, *s2 = s1 + C;
            const float *ad = add + (int64_t)n * C, *k = piv + (int64_t)n * C;
            for (int c = 0; c < C; c++) s1[c] = s2[c] = 0.0;
            for (int64_t p = p0; p < p1; p++) {
                const float *r = x + ((int64_t)n * P + p) * C;
#pragma omp simd
                for (int c = 0; c < C; c++) {
                    const double d = (double)(r[c] + ad[c]) - (double)k[c];
                    s1[c] += d;
                    s2[c] += d * d;
                }
            }
        }
        /* Per (sample, group): combine blocks and channels, set the channel constants. */
#pragma omp for schedule(static)
        for (int ng = 0; ng < N * G; ng++) {
            const int n = ng / G, c0 = ng % G * Cg;
            double m2 = 0, mean = 0;
            /* first the channel means, then the group's */
            for (int c = c0; c < c0 + Cg; c++) {
                double t1 = 0;
                for (int64_t blk = 0; blk < nb; blk++) t1 += sums[((int64_t)n * nb + blk) * 2 * C + c];
                mean += (double)piv[(int64_t)n * C + c] + t1 / (double)P;
            }
            mean /= Cg;
            for (int c = c0; c < c0 + Cg; c++) {
                double t1 = 0, t2 = 0;
                for (int64_t blk = 0; blk < nb; blk++) {
                    const double *s1 = sums + ((int64_t)n * nb + blk) * 2 * C;
                    t1 += s1[c];
                    t2 += s1[C + c];
                }
                const double mc = (double)piv[(int64_t)n * C + c] + t1 / (double)P;
                m2 += (t2 - t1 * t1 / (double)P) + (double)P * (mc - mean) * (mc - mean);
            }
            const double var = m2 / ((double)Cg * (double)P);
            const double rstd = 1.0 / sqrt((var > 0 ? var : 0) + (double)eps);
            for (int c = c0; c < c0 + Cg; c++) {
                const int64_t i = (int64_t)n * C + c;
                mu[i] = (float)mean;
                a[i] = (float)(rstd * ga[c]);
                bb[i] = be[c];
                /* scale_shift: y = shift + y * (scale + 1) */
                sc[i] = ss ? ss[(int64_t)n * 2 * C + c] + 1.0f : 1.0f;
                sh[i] = ss ? ss[(int64_t)n * 2 * C + C + c] : 0.0f;
            }
        }
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            const int n = (int)(it / nb);
            const int64_t p0 = P * (it % nb) / nb, p1 = P * (it % nb + 1) / nb;
            const int64_t o = (int64_t)n * C;
            const float *ad = add + o, *m = mu + o, *aa = a + o, *b = bb + o, *k = sc + o,
                        *t = sh + o;
            /* GN_SILU_PIXELS at a time, so the silu pass finds them in cache */
            for (int64_t q0 = p0; q0 < p1; q0 += GN_SILU_PIXELS) {
                const int64_t q1 = q0 + GN_SILU_PIXELS < p1 ? q0 + GN_SILU_PIXELS : p1;
                for (int64_t p = q0; p < q1; p++) {
                    const float *r = x + ((int64_t)n * P + p) * C;
                    float *w = y + ((int64_t)n * P + p) * C;
                    if (ss) {
#pragma omp simd
                        for (int c = 0; c < C; c++)
                            w[c] = t[c] + (((r[c] + ad[c]) - m[c]) * aa[c] + b[c]) * k[c];
                    } else {
#pragma omp simd
                        for (int c = 0; c < C; c++) w[c] = ((r[c] + ad[c]) - m[c]) * aa[c] + b[c];
                    }
                }
                if (act_silu) edm_cpu_silu_inplace(y + ((int64_t)n * P + q0) * C, (q1 - q0) * C);
            }
        }
    }
    return 0;
}
