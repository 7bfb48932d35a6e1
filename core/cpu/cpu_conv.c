/*
 * cpu_conv.c - conv2d and the FIR resamplers of the CPU backend (spec 1.2; semantics in ops.h).
 *
 * conv2d as GEMM: out_n[Co, P] = W[Co, K] . col_n[K, P] with K = Ci*k*k and P = Ho*Wo.
 * The N*P output columns of the whole batch are one column space, cut into equal ranges, one
 * per thread (OpenBLAS itself runs single-threaded, see cpu_internal.h); each thread walks its
 * range in chunks of up to CONV_CHUNK columns, one GEMM per chunk:
 *  - with im2col (every k > 1 or padded conv) a chunk packs the columns of several images
 *    when the maps are small (16x16: 4 images, 8x8: 16), so each GEMM is ~1024 columns wide
 *    instead of 256 or 64: OpenBLAS packs the weights once per call, and narrow calls run at
 *    70-80% of the wide rate. Such a chunk GEMMs into a scratch tile and the epilogue
 *    scatters the tile into NCHW;
 *  - a chunk inside one image GEMMs straight into `out` (ldc = P), and a 1x1 unpadded conv
 *    reads its input in place (it is already [Ci, P]), spanning images only below 16x16.
 * The im2col tile is capped at CONV_COL_FLOATS, which narrows the chunk for deep K.
 * Measured on 2-core Zen 3 (bench/bench_ops): 3x3 convs at 85-90% of a same-size SGEMM.
 * The epilogue ((acc + bias) + residual) * out_scale runs on each chunk while it is in cache.
 * When residual is out itself, the GEMM goes to the tile so the residual is read before it
 * is overwritten. Scratch (im2col columns + tile) is per thread, owned by the backend.
 *
 * This im2col path is the fallback: cpu_dnnl.c runs every conv oneDNN accepts (all of the
 * networks' on AVX-512 CPUs); EDM_CPU_ONEDNN=0 forces this path (fp32 only).
 *
 * FIR resampling (depthwise, stride 2) runs one (n, c) plane per iteration; the filter
 * length is a compile-time constant in the common cases (2 and 4) so the tap loops unroll.
 */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "cpu_internal.h"

#define CONV_CHUNK 1024                    /* GEMM columns per call (N) */
#define CONV_COL_FLOATS ((int64_t)1 << 22) /* im2col tile cap: 16 MiB per thread */
#define CONV_SPAN_1X1_BELOW 256

/* im2col for output columns [pos, pos+len) of the batch (column g = n*P + y*Wo + x):
 * col[r, j] with r = (ci*k + ky)*k + kx, zero outside the padded input. Each row r is one
 * write stream; the walk over (image, output row) segments is incremental (no divisions),
 * and short segments (8x8, 4x4 maps) are copied inline rather than by memcpy calls. */
static void im2col(float *col, int64_t len, const float *in, int Ci, int H, int W, int k, int pad,
                   int Ho, int Wo, int64_t pos) {
    const int64_t P = (int64_t)Ho * Wo;
    const int64_t n0 = pos / P;
    const int y0 = (int)(pos % P / Wo), xs0 = (int)(pos % P % Wo);
    for (int ci = 0; ci < Ci; ci++) {
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((int64_t)(ci * k + ky) * k + kx) * len;
                /* output x with a valid input column: x + kx - pad in [xlo, xhi) */
                const int xlo = pad - kx, xhi = W + pad - kx;
                int64_t n = n0, j = 0;
                int y = y0, x0 = xs0;
                while (j < len) {
                    const int run = Wo - x0 < len - j ? Wo - x0 : (int)(len - j);
                    const int x1 = x0 + run;
                    float *dst = row + j; /* dst[x - x0] for x in [x0, x1) */
                    const int iy = y + ky - pad;
                    const int a = x0 > xlo ? x0 : xlo, e = x1 < xhi ? x1 : xhi;
                    if (iy < 0 || iy >= H || a >= e) {
                        for (int x = 0; x < run; x++) dst[x] = 0.0f;
                    } else {
                        const float *src = in + (((int64_t)n * Ci + ci) * H + iy) * W;
                        for (int x = x0; x < a; x++) dst[x - x0] = 0.0f;
                        if (e - a >= 32) {
                            memcpy(dst + (a - x0), src + (a + kx - pad),
                                   (size_t)(e - a) * sizeof(float));
                        } else {
                            for (int x = a; x < e; x++) dst[x - x0] = src[x + kx - pad];
                        }
                        for (int x = e; x < x1; x++) dst[x - x0] = 0.0f;
                    }
                    j += run;
                    x0 = 0;
                    if (++y == Ho) y = 0, n++;
                }
            }
        }
    }
}

/* dst[j] = ((acc[j] + bc) + res[j]) * s over len values (res may be NULL, dst may be acc). */
static void epilogue_row(float *dst, const float *acc, const float *res, int64_t len, float bc,
                         float s) {
    if (res) {
        if (s == 1.0f) {
#pragma omp simd
            for (int64_t j = 0; j < len; j++) dst[j] = (acc[j] + bc) + res[j];
        } else {
#pragma omp simd
            for (int64_t j = 0; j < len; j++) dst[j] = ((acc[j] + bc) + res[j]) * s;
        }
    } else if (s == 1.0f) {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) dst[j] = acc[j] + bc;
    } else {
#pragma omp simd
        for (int64_t j = 0; j < len; j++) dst[j] = (acc[j] + bc) * s;
    }
}

int edm_cpu_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale,
                   char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, weight, bias, residual);
    if (cx->onednn || cx->bf16) {
        int r = edm_cpu_dnnl_conv2d(cx, out, in, weight, bias, pad, residual, out_scale, msg);
        if (r <= 0) return r ? 1 : 0;
        if (cx->bf16) {
            snprintf(msg, EDM_OPS_MSG, "oneDNN has no bf16 convolution for this shape or CPU");
            return 1;
        }
    }
    const int Ci = in->c, H = in->h, W = in->w, Co = out->c, k = weight->h, Wo = out->w;
    const int64_t P = (int64_t)out->h * Wo, K = (int64_t)Ci * k * k, total = (int64_t)in->n * P;
    const int no_im2col = (k == 1 && pad == 0); /* the input is already col_n */
    /* Chunk width: CONV_CHUNK columns, fewer for deep K so the im2col tile stays bounded. */
    int64_t chunk = CONV_COL_FLOATS / K;
    chunk = chunk > CONV_CHUNK ? CONV_CHUNK : chunk < 256 ? 256 : chunk & ~(int64_t)15;
    /* With im2col a chunk always packs several small images into one wide GEMM; a 1x1 conv
     * reads its input in place, so it spans images (and copies them) only for tiny maps. */
    const int span = no_im2col ? P < CONV_SPAN_1X1_BELOW : 1;
    const int alias = residual && residual->data == out->data;
    const float *x = cpu_f(in), *w = cpu_f(weight);
    const float *b = bias ? cpu_f(bias) : NULL, *res = residual ? cpu_f(residual) : NULL;
    float *y = cpu_f(out);
    const float s = out_scale;
    const int trivial_epi = !b && !res && s == 1.0f;

    /* ~4 MFLOP and 16 columns per thread at least. */
    int team = edm_cpu_team(cx, 2.0 * Co * (double)K * total, 4e6);
    if (team > total / 16) team = total >= 32 ? (int)(total / 16) : 1;
    if (chunk > (total + team - 1) / team) chunk = (total + team - 1) / team;
    const size_t col_floats = (size_t)((K * chunk + 15) & ~(int64_t)15);
    if (edm_cpu_scratch_reserve(cx, col_floats + (size_t)Co * chunk, msg)) return 1;

#pragma omp parallel num_threads(team)
    {
        const int t = omp_get_thread_num();
        const int64_t c0 = total * t / team, c1 = total * (t + 1) / team;
        float *col = cx->scratch[t], *tile = col + col_floats;
        for (int64_t pos = c0; pos < c1;) {
            const int64_t n = pos / P, p = pos % P;
            int64_t end = pos + chunk < c1 ? pos + chunk : c1;
            if (!span && end > (n + 1) * P) end = (n + 1) * P;
            const int64_t len = end - pos;
            const int single = end <= (n + 1) * P;

            const float *B;
            int64_t ldb;
            if (no_im2col && single) {
                B = x + n * Ci * P + p;
                ldb = P;
            } else {
                im2col(col, len, x, Ci, H, W, k, pad, out->h, Wo, pos);
                B = col;
                ldb = len;
            }
            if (single && !alias) {
                float *C = y + n * Co * P + p;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, (int)len, (int)K, 1.0f,
                            w, (int)K, B, (int)ldb, 0.0f, C, (int)P);
                if (!trivial_epi) {
                    for (int co = 0; co < Co; co++) {
                        float *r = C + (int64_t)co * P;
                        epilogue_row(r, r, res ? res + (r - y) : NULL, len, b ? b[co] : 0.0f, s);
                    }
                }
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Co, (int)len, (int)K, 1.0f,
                            w, (int)K, B, (int)ldb, 0.0f, tile, (int)len);
                /* scatter image by image: columns [j, j + seg) belong to image m at pixel q */
                for (int64_t j = 0, g = pos; j < len;) {
                    const int64_t m = g / P, q = g % P;
                    int64_t seg = P - q < len - j ? P - q : len - j;
                    for (int co = 0; co < Co; co++) {
                        const int64_t o = (m * Co + co) * P + q;
                        epilogue_row(y + o, tile + co * len + j, res ? res + o : NULL, seg,
                                     b ? b[co] : 0.0f, s);
                    }
                    j += seg;
                    g += seg;
                }
            }
            pos = end;
        }
    }
    return 0;
}

/* ---- FIR resampling ------------------------------------------------------------------------ */

/* Range [lo, hi) of the indices u in [0, n) with 0 <= 2u + off < lim (fir_down columns) */
static inline void span2(int n, int off, int lim, int *lo, int *hi) {
    int a = off >= 0 ? 0 : (1 - off) / 2;             /* ceil(-off / 2) */
    int b = lim - off <= 0 ? 0 : (lim - off + 1) / 2; /* ceil((lim - off) / 2) */
    *lo = a;
    *hi = b < n ? b : n;
}

/* One plane of fir_down: each output row accumulates L*L shifted, stride-2 input rows; the
 * column range of every tap is clipped to the image instead of testing each pixel, so the
 * inner loop is a plain vectorizable multiply-add. L is a constant after inlining (2, 4). */
static inline void fir_down_plane(float *o, const float *in, const float *f, int L, int H, int W,
                                  int Ho, int Wo, int pad) {
    for (int m = 0; m < Ho; m++) {
        float *orow = o + (int64_t)m * Wo;
        for (int q = 0; q < Wo; q++) orow[q] = 0.0f;
        for (int a = 0; a < L; a++) {
            const int iy = 2 * m + a - pad;
            if (iy < 0 || iy >= H) continue;
            const float *irow = in + (int64_t)iy * W;
            for (int b = 0; b < L; b++) {
                const float fab = f[a * L + b];
                int lo, hi;
                span2(Wo, b - pad, W, &lo, &hi);
#pragma omp simd
                for (int q = lo; q < hi; q++) orow[q] += fab * irow[2 * q + b - pad];
            }
        }
    }
}

int edm_cpu_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                     int pad, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, filter);
    const int L = filter->h, H = in->h, W = in->w, Ho = out->h, Wo = out->w;
    const int64_t planes = (int64_t)in->n * in->c;
    const float *x = cpu_f(in), *f = cpu_f(filter);
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)planes * H * W, 65536.0);
#pragma omp parallel for num_threads(team) schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        float *o = y + pl * Ho * Wo;
        const float *src = x + pl * H * W;
        if (L == 2)
            fir_down_plane(o, src, f, 2, H, W, Ho, Wo, pad);
        else if (L == 4)
            fir_down_plane(o, src, f, 4, H, W, Ho, Wo, pad);
        else
            fir_down_plane(o, src, f, L, H, W, Ho, Wo, pad);
    }
    return 0;
}

/* One plane of fir_up: out[Y,X] = sum 4 f[a,b] in[i,j] over 2i+a-pad = Y, 2j+b-pad = X.
 * Output row Y takes the taps a of parity (Y+pad)%2 (row i = (Y+pad-a)/2); its even and odd
 * columns X = 2u+px take the taps b of parity (px+pad)%2, reading in[i, u + (px+pad-b)/2]:
 * a contiguous, shifted input row. Even and odd halves accumulate in ev/od (a gather, no
 * scatter races) and are interleaved at the end. */
static inline void fir_up_plane(float *o, const float *in, const float *f4, int L, int H, int W,
                                int pad, float *ev, float *od) {
    for (int Y = 0; Y < 2 * H; Y++) {
        for (int u = 0; u < W; u++) ev[u] = od[u] = 0.0f;
        for (int a = (Y + pad) & 1; a < L; a += 2) {
            const int i = (Y + pad - a) / 2; /* exact: Y + pad - a is even */
            if (i < 0 || i >= H) continue;
            const float *irow = in + (int64_t)i * W;
            for (int px = 0; px < 2; px++) {
                float *acc = px ? od : ev;
                for (int b = (px + pad) & 1; b < L; b += 2) {
                    const int d = (px + pad - b) / 2; /* j = u + d */
                    const float c = f4[a * L + b];
                    const int lo = d < 0 ? -d : 0, hi = W - d < W ? W - d : W;
#pragma omp simd
                    for (int u = lo; u < hi; u++) acc[u] += c * irow[u + d];
                }
            }
        }
        float *orow = o + (int64_t)Y * 2 * W;
        for (int u = 0; u < W; u++) {
            orow[2 * u] = ev[u];
            orow[2 * u + 1] = od[u];
        }
    }
}

int edm_cpu_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                   int pad, char *msg) {
    struct cpu_ctx *cx = ctx;
    CPU_CHECK_F32(msg, out, in, filter);
    const int L = filter->h, H = in->h, W = in->w;
    if (L > 8) {
        snprintf(msg, EDM_OPS_MSG, "filter length %d > 8", L);
        return 1;
    }
    float f4[64]; /* the gain 4 folded into the taps (exact: a power of two) */
    for (int i = 0; i < L * L; i++) f4[i] = 4.0f * cpu_f(filter)[i];
    if (edm_cpu_scratch_reserve(cx, 2 * (size_t)W, msg)) return 1;
    const int64_t planes = (int64_t)in->n * in->c;
    const float *x = cpu_f(in);
    float *y = cpu_f(out);
    int team = edm_cpu_team(cx, (double)planes * H * W * 4, 65536.0);
#pragma omp parallel num_threads(team)
    {
        float *ev = cx->scratch[omp_get_thread_num()], *od = ev + W;
#pragma omp for schedule(static)
        for (int64_t pl = 0; pl < planes; pl++) {
            float *o = y + pl * 4 * H * W;
            const float *src = x + pl * H * W;
            if (L == 2)
                fir_up_plane(o, src, f4, 2, H, W, pad, ev, od);
            else if (L == 4)
                fir_up_plane(o, src, f4, 4, H, W, pad, ev, od);
            else
                fir_up_plane(o, src, f4, L, H, W, pad, ev, od);
        }
    }
    return 0;
}
