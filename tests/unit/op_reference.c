/*
 * op_reference.c - the plain, obviously-correct reference ops (see op_reference.h).
 *
 * Deliberately naive: direct loops over the formula in core/ops.h, double accumulation,
 * bounds checks instead of padding tricks. Speed does not matter; the tests keep shapes small.
 * The only fp32 rounding kept on purpose is the one the spec prescribes: the embedding
 * argument x*f is an fp32 product (spec 1.6/1.7).
 */
#include "op_reference.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_conv2d(float *out, const float *in, const float *w, const float *bias, const float *res,
                float scale, int N, int Ci, int H, int W, int Co, int k, int pad) {
    const int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    for (int n = 0; n < N; n++)
        for (int co = 0; co < Co; co++)
            for (int y = 0; y < Ho; y++)
                for (int x = 0; x < Wo; x++) {
                    double acc = 0;
                    for (int ci = 0; ci < Ci; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int iy = y + ky - pad, ix = x + kx - pad;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((co * Ci + ci) * k + ky) * k + kx] *
                                       in[((n * Ci + ci) * H + iy) * W + ix];
                            }
                    int64_t o = (((int64_t)n * Co + co) * Ho + y) * Wo + x;
                    if (bias) acc += bias[co];
                    if (res) acc += res[o];
                    out[o] = (float)(acc * scale);
                }
}

void ref_fir_down(float *out, const float *in, const float *f, int L, int pad, int N, int C, int H,
                  int W, int Ho, int Wo) {
    for (int nc = 0; nc < N * C; nc++)
        for (int m = 0; m < Ho; m++)
            for (int q = 0; q < Wo; q++) {
                double acc = 0;
                for (int a = 0; a < L; a++)
                    for (int b = 0; b < L; b++) {
                        int iy = 2 * m + a - pad, ix = 2 * q + b - pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        acc += (double)f[a * L + b] * in[((int64_t)nc * H + iy) * W + ix];
                    }
                out[((int64_t)nc * Ho + m) * Wo + q] = (float)acc;
            }
}

void ref_fir_up(float *out, const float *in, const float *f, int L, int pad, int N, int C, int H,
                int W) {
    const int Ho = 2 * H, Wo = 2 * W;
    double *acc = calloc((size_t)Ho * Wo, sizeof *acc);
    if (!acc) abort(); /* test code: no way to continue */
    for (int nc = 0; nc < N * C; nc++) {
        memset(acc, 0, (size_t)Ho * Wo * sizeof *acc);
        /* the scatter form of the transposed conv: every (i, j, a, b) adds to one output */
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int a = 0; a < L; a++)
                    for (int b = 0; b < L; b++) {
                        int Y = 2 * i + a - pad, X = 2 * j + b - pad;
                        if (Y < 0 || Y >= Ho || X < 0 || X >= Wo) continue;
                        acc[Y * Wo + X] += 4.0 * f[a * L + b] * in[((int64_t)nc * H + i) * W + j];
                    }
        for (int p = 0; p < Ho * Wo; p++) out[(int64_t)nc * Ho * Wo + p] = (float)acc[p];
    }
    free(acc);
}

static double silu(double v) {
    return v / (1.0 + exp(-v));
}

void ref_linear(float *out, const float *in, const float *w, const float *b, float alpha,
                float beta, int act_silu, int N, int K, int O) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double acc = 0;
            for (int i = 0; i < K; i++)
                acc += (double)alpha * in[n * K + i] * w[(int64_t)o * K + i];
            if (beta != 0.0f) acc += (double)beta * out[n * O + o];
            if (b) acc += b[o];
            out[n * O + o] = (float)(act_silu ? silu(acc) : acc);
        }
}

void ref_group_norm(float *out, const float *in, const float *gamma, const float *beta, int G,
                    float eps, const float *pre_add, const float *scale_shift, int act_silu, int N,
                    int C, int HW) {
    const int Cg = C / G;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            double sum = 0, sq = 0, cnt = (double)Cg * HW;
            for (int c = g * Cg; c < (g + 1) * Cg; c++)
                for (int p = 0; p < HW; p++) {
                    double v = (double)in[((int64_t)n * C + c) * HW + p] +
                               (pre_add ? pre_add[n * C + c] : 0.0);
                    sum += v;
                }
            double mu = sum / cnt;
            for (int c = g * Cg; c < (g + 1) * Cg; c++)
                for (int p = 0; p < HW; p++) {
                    double v = (double)in[((int64_t)n * C + c) * HW + p] +
                               (pre_add ? pre_add[n * C + c] : 0.0);
                    sq += (v - mu) * (v - mu);
                }
            double rstd = 1.0 / sqrt(sq / cnt + (double)eps);
            for (int c = g * Cg; c < (g + 1) * Cg; c++)
                for (int p = 0; p < HW; p++) {
                    int64_t i = ((int64_t)n * C + c) * HW + p;
                    double v = (double)in[i] + (pre_add ? pre_add[n * C + c] : 0.0);
                    double y = (v - mu) * rstd * gamma[c] + beta[c];
                    if (scale_shift) {
                        double scale = scale_shift[(int64_t)n * 2 * C + c];
                        double shift = scale_shift[(int64_t)n * 2 * C + C + c];
                        y = shift + y * (scale + 1.0);
                    }
                    out[i] = (float)(act_silu ? silu(y) : y);
                }
        }
}

void ref_bias_residual(float *out, const float *in, const float *bias, const float *res,
                       float scale, int N, int C, int HW) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                int64_t i = ((int64_t)n * C + c) * HW + p;
                double v = (double)in[i] + (bias ? bias[c] : 0.0) + (res ? res[i] : 0.0);
                out[i] = (float)(v * scale);
            }
}

void ref_concat(float *out, const float *a, const float *b, int N, int Ca, int Cb, int HW) {
    for (int n = 0; n < N; n++) {
        for (int c = 0; c < Ca; c++)
            for (int p = 0; p < HW; p++)
                out[((int64_t)n * (Ca + Cb) + c) * HW + p] = a[((int64_t)n * Ca + c) * HW + p];
        for (int c = 0; c < Cb; c++)
            for (int p = 0; p < HW; p++)
                out[((int64_t)n * (Ca + Cb) + Ca + c) * HW + p] = b[((int64_t)n * Cb + c) * HW + p];
    }
}

void ref_attention(float *out, const float *qkv, int N, int C, int P, int heads) {
    const int Ch = C / heads;
    double *w = malloc((size_t)P * sizeof *w);
    if (!w) abort();
    for (int n = 0; n < N; n++)
        for (int hd = 0; hd < heads; hd++) {
/* channel o = 3*(hd*Ch + c) + j of sample n, pixel p (spec 1.5, the interleaved layout) */
#define QKV(c, j, p) ((double)qkv[((int64_t)n * 3 * C + 3 * (hd * Ch + (c)) + (j)) * P + (p)])
            for (int i = 0; i < P; i++) {
                double mx = -INFINITY, den = 0;
                for (int j = 0; j < P; j++) {
                    double s = 0;
                    for (int c = 0; c < Ch; c++)
                        s += QKV(c, 0, i) * (QKV(c, 1, j) / sqrt((double)Ch));
                    w[j] = s;
                    if (s > mx) mx = s;
                }
                for (int j = 0; j < P; j++) {
                    w[j] = exp(w[j] - mx);
                    den += w[j];
                }
                for (int c = 0; c < Ch; c++) {
                    double acc = 0;
                    for (int j = 0; j < P; j++) acc += w[j] / den * QKV(c, 2, j);
                    out[((int64_t)n * C + hd * Ch + c) * P + i] = (float)acc;
                }
            }
#undef QKV
        }
    free(w);
}

void ref_embed(float *out, const float *x, const float *freqs, int N, int half, int swap) {
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++) {
            float arg = x[n] * freqs[i]; /* fp32 product, as the reference computes it */
            float c = (float)cos((double)arg), s = (float)sin((double)arg);
            out[(int64_t)n * 2 * half + (swap ? half : 0) + i] = c;
            out[(int64_t)n * 2 * half + (swap ? 0 : half) + i] = s;
        }
}

void ref_scale_rows(float *out, const float *in, const float *coef, int N, int64_t row) {
    for (int n = 0; n < N; n++)
        for (int64_t i = 0; i < row; i++)
            out[n * row + i] = (float)((double)coef[n] * in[n * row + i]);
}

void ref_precond_out(float *out, const float *x, const float *F, const float *c_skip,
                     const float *c_out, int N, int C, int CF, int HW) {
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int p = 0; p < HW; p++) {
                double v = (double)c_skip[n] * x[((int64_t)n * C + c) * HW + p] +
                           (double)c_out[n] * F[((int64_t)n * CF + c) * HW + p];
                out[((int64_t)n * C + c) * HW + p] = (float)v;
            }
}
