/*
 * cpu_conv.c - conv2d and the FIR resamplers of the CPU backend (spec 1.2; semantics in ops.h),
 * on NHWC activations (ops.h "Layouts").
 *
 * conv2d runs through oneDNN (cpu_dnnl.c) wherever it accepts the shape (all of the
 * networks' convs on AVX-512 CPUs). This file holds the fallback, for shapes oneDNN refuses
 * and for EDM_CPU_ONEDNN=0 (fp32 only): im2col + one GEMM per chunk of output pixels.
 * In NHWC the batch's output is one [N*Ho*Wo, Co] matrix and the input's pixels are rows of
 * Ci values, so
 *     out[rows, Co] = col[rows, K] . Wr[K, Co],   K = k*k*Ci in (ky, kx, ci) order,
 * where Wr is the weights rearranged once to [ky][kx][ci][co] (cached by cpu_dnnl.c) and a
 * row of col is the k*k input pixels under the output pixel: for each ky, the kx taps that
 * fall inside the image are adjacent input pixels, one memcpy of their channels. A 1x1
 * unpadded conv multiplies the input itself (it is already [rows, Ci]). Chunks of rows may
 * span images; the team splits the rows into equal ranges and each thread walks its range in
 * chunks of up to CONV_CHUNK rows (fewer for deep K: the im2col tile is capped at
 * CONV_COL_FLOATS per thread), GEMMing straight into `out` (ldc = Co) and applying the
 * epilogue ((acc + bias) + residual) * out_scale to the chunk while it is in cache. When the
 * residual is out itself, the GEMM goes to a tile so the residual is read before it is
 * overwritten.
 *
 * FIR resampling (depthwise, stride 2): one output row of one image per iteration, each
 * output pixel a sum of L*L (or fewer) input pixels scaled by a tap, vectorised along the
 * channels.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "cpu_internal.h"

#define CONV_CHUNK 1024                    /* GEMM rows per call (M) */
#define CONV_COL_FLOATS ((int64_t)1 << 22) /* im2col tile cap: 16 MiB per thread */

/* im2col for output pixels [pos, pos+len) of the batch (row g = (n*Ho + y)*Wo + x):
 * col[j, (ky*k + kx)*Ci + ci] = in[n, y+ky-pad, x+kx-pad, ci], zero outside the image. */
static void im2col_nhwc(float *col, int64_t len, const float *in, int Ci, int H, int W, int k,
                        int pad, int Ho, int Wo, int64_t pos) {
    const int64_t K = (int64_t)k * k * Ci;
    int64_t n = pos / ((int64_t)Ho * Wo);
    int y = (int)(pos / Wo % Ho), x = (int)(pos % Wo);
    for (int64_t j = 0; j < len; j++) {
        float *row = col + j * K;
        /* the kx with an input column inside the image: x + kx - pad in [0, W) */
        const int kx0 = pad - x > 0 ? pad - x : 0, kx1 = W + pad - x < k ? W + pad - x : k;
        for (int ky = 0; ky < k; ky++) {
            float *dst = row + (int64_t)ky * k * Ci;
            const int iy = y + ky - pad;
            if (iy < 0 || iy >= H || kx0 >= kx1) {
                memset(dst, 0, (size_t)k * Ci * sizeof(float));
                continue;
            }
            if (kx0 > 0) memset(dst, 0, (size_t)kx0 * Ci * sizeof(float));
            memcpy(dst + (int64_t)kx0 * Ci,
                   in + (((n * H + iy) * W) + x + kx0 - pad) * (int64_t)Ci,
                   (size_t)(kx1 - kx0) * Ci * sizeof(float));
            if (kx1 < k) memset(dst + (int64_t)kx1 * Ci, 0, (size_t)(k - kx1) * Ci * sizeof(float));
        }
        if (++x == Wo) {
            x = 0;
            if (++y == Ho) y = 0, n++;
        }
    }
}

/* dst[r, c] = ((acc[r, c] + b[c]) + res[r, c]) * s over rows x Co (b, res may be NULL; dst
 * may be acc or res). Row strides: all Co. */
static void epilogue_rows(float *dst, const float *acc, const float *res, const float *b,
                          int64_t rows, int Co, float s) {
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * Co;
        const float *a = acc + r * Co, *q = res ? res + r * Co : NULL;
        if (q && b) {
#pragma omp simd
            for (int c = 0; c < Co; c++) d[c] = ((a[c] + b[c]) + q[c]) * s;
        } else if (q) {
#pragma omp simd
            for (int c = 0; c < Co; c++) d[c] = (a[c] + q[c]) * s;
        } else if (b) {
#pragma omp simd
            for (int c = 0; c < Co; c++) d[c] = (a[c] + b[c]) * s;
        } else {
#pragma omp simd
            for (int c = 0; c < Co; c++) d[c] = a[c] * s;
        }
    }
}

int edm_cpu_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                   char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, weight, bias, residual);
    if (edm_cpu_winograd_applies(cx, in, weight, out, pad))
        return edm_cpu_winograd_conv2d(cx, out, in, weight, bias, residual, out_scale, msg);
    if (cx->onednn || cx->bf16) {
        int r = edm_cpu_dnnl_conv2d(cx, out, in, weight, bias, pad, residual, out_scale, msg);
        if (r <= 0) return r ? 1 : 0;
        if (cx->bf16) {
            snprintf(msg, EDM_OPS_MSG, "oneDNN has no bf16 convolution for this shape or CPU");
            return 1;
        }
    }
    const float *w = edm_cpu_dnnl_weights_hwio(cx, weight, msg); /* [K][Co] */
    if (!w) return 1;
    const int Ci = in->c, H = in->h, W = in->w, Co = out->c, k = weight->h, Wo = out->w;
    const int64_t K = (int64_t)Ci * k * k, total = (int64_t)in->n * out->h * Wo;
    const int no_im2col = (k == 1 && pad == 0); /* the input is already col */
    int64_t chunk = CONV_COL_FLOATS / K;
    chunk = chunk > CONV_CHUNK ? CONV_CHUNK : chunk < 64 ? 64 : chunk;
    const int alias = residual && residual->data == out->data;
    const float *x = cpu_f(in), *b = bias ? cpu_f(bias) : NULL;
    const float *res = residual ? cpu_f(residual) : NULL;
    float *y = cpu_f(out);
    const float s = out_scale;
    const int trivial_epi = !b && !res && s == 1.0f;

    /* ~4 MFLOP and 16 rows per thread at least. */
    int team = edm_cpu_team(cx, 2.0 * Co * (double)K * total, 4e6);
    if (team > total / 16) team = total >= 32 ? (int)(total / 16) : 1;
    if (chunk > (total + team - 1) / team) chunk = (total + team - 1) / team;
    const size_t col_floats = no_im2col ? 0 : (size_t)((K * chunk + 15) & ~(int64_t)15);
    if (edm_cpu_scratch_reserve(cx, col_floats + (alias ? (size_t)Co * chunk : 0) + 1, msg))
        return 1;

#pragma omp parallel num_threads(team)
    {
        const int t = omp_get_thread_num();
        const int64_t c0 = total * t / team, c1 = total * (t + 1) / team;
        float *col = cx->scratch[t], *tile = col + col_floats;
        for (int64_t pos = c0; pos < c1; pos += chunk) {
            const int64_t len = c1 - pos < chunk ? c1 - pos : chunk;
            const float *A = x + pos * Ci;
            if (!no_im2col) {
                im2col_nhwc(col, len, x, Ci, H, W, k, pad, out->h, Wo, pos);
                A = col;
            }
            float *C = alias ? tile : y + pos * Co;
            edm_cpu_gemm1(cx, 0, 0, (int)len, Co, (int)K, 1.0f, A, (int)K, w, Co, 0.0f, C, Co);
            if (!trivial_epi)
                epilogue_rows(y + pos * Co, C, res ? res + pos * Co : NULL, b, len, Co, s);
        }
    }
    return 0;
}

/* ---- FIR resampling ------------------------------------------------------------------------ */

/* o[c] += f * in[c] over C channels. */
static inline void axpy_row(float *o, const float *in, float f, int C) {
#pragma omp simd
    for (int c = 0; c < C; c++) o[c] += f * in[c];
}

int edm_cpu_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                     int pad, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, filter);
    const int L = filter->h, H = in->h, W = in->w, Ho = out->h, Wo = out->w, C = in->c;
    const int64_t rows = (int64_t)in->n * Ho;
    const float *x = cpu_f(in), *f = cpu_f(filter);
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)in->n * C * H * W, 65536.0);
    /* out[n,m,q,:] = sum_{a,b} f[a,b] in[n, 2m+a-pad, 2q+b-pad, :] */
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t n = row / Ho;
        const int m = (int)(row % Ho);
        for (int q = 0; q < Wo; q++) {
            float *o = y + (row * Wo + q) * C;
            memset(o, 0, (size_t)C * sizeof(float));
            for (int a = 0; a < L; a++) {
                const int iy = 2 * m + a - pad;
                if (iy < 0 || iy >= H) continue;
                for (int b = 0; b < L; b++) {
                    const int ix = 2 * q + b - pad;
                    if (ix < 0 || ix >= W) continue;
                    axpy_row(o, x + ((n * H + iy) * W + ix) * C, f[a * L + b], C);
                }
            }
        }
    }
    return 0;
}

int edm_cpu_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                   int pad, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, filter);
    const int L = filter->h, H = in->h, W = in->w, C = in->c;
    if (L > 8) {
        snprintf(msg, EDM_OPS_MSG, "filter length %d > 8", L);
        return 1;
    }
    float f4[64]; /* the gain 4 folded into the taps (exact: a power of two) */
    for (int i = 0; i < L * L; i++) f4[i] = 4.0f * cpu_f(filter)[i];
    const int64_t rows = (int64_t)in->n * 2 * H;
    const float *x = cpu_f(in);
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)in->n * C * H * W * 4, 65536.0);
    /* out[n,Y,X,:] = sum over 2i+a-pad = Y, 2j+b-pad = X of 4 f[a,b] in[n,i,j,:]: the taps a
     * of parity (Y+pad)%2 (row i = (Y+pad-a)/2), b of parity (X+pad)%2 likewise. */
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        const int64_t n = row / (2 * H);
        const int Y = (int)(row % (2 * H));
        for (int X = 0; X < 2 * W; X++) {
            float *o = y + (row * 2 * W + X) * C;
            memset(o, 0, (size_t)C * sizeof(float));
            for (int a = (Y + pad) & 1; a < L; a += 2) {
                const int i = (Y + pad - a) / 2; /* exact: Y + pad - a is even */
                if (i < 0 || i >= H) continue;
                for (int b = (X + pad) & 1; b < L; b += 2) {
                    const int j = (X + pad - b) / 2;
                    if (j < 0 || j >= W) continue;
                    axpy_row(o, x + ((n * H + i) * W + j) * C, f4[a * L + b], C);
                }
            }
        }
    }
    return 0;
}
