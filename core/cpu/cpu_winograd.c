/*
 * cpu_winograd.c - 3x3 "same" convolutions of the CPU backend in fp32 by Winograd's minimal
 * filtering F(2x2, 3x3) (Lavin & Gray, 2016), on NHWC activations.
 *
 * Why: the 3x3 convolutions are nearly all of a network's FLOPs, and oneDNN's direct
 * convolution already runs them at about 85% of the machine's SGEMM rate, so being faster
 * needs fewer multiplications. F(2x2, 3x3) computes each 2x2 block of output pixels from a
 * 4x4 block of input with 16 products per (input, output) channel pair instead of 36: 2.25x
 * fewer, spent in GEMMs of library code (oneDNN's matmul), plus two cheap transforms.
 * oneDNN 2.6 has its own Winograd only for AVX-512 CPUs without AMX and refuses these shapes
 * elsewhere. F(2x2, 3x3) and not F(4x4, 3x3): its transforms hold only 0, +-1 and +-1/2, so
 * its error stays near the direct convolution's (test_ops checks it at the fp32 tolerance,
 * the conformance tests against the official code).
 *
 * For a tile t (output rows 2ty..2ty+1, columns 2tx..2tx+1 of image n), with d the 4x4 input
 * block under it (zero outside the image) and g a 3x3 kernel of channel pair (ci, co):
 *     V = B^T d B,  U = G g G^T,  M[e] = sum_ci V[e][ci] U[e][ci][co]  (e < 16),
 *     Y = A^T M A  (2x2), then out = ((Y + bias) + residual) * out_scale
 * with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 * A^T = [1 1 1 0; 0 1 -1 -1]. U is made once per weight tensor, in oneDNN's blocked layout
 * for its matmul, and cached with the other rearranged weights (cpu_dnnl.c): 16/9 of the 3x3
 * weights. The batch's tiles go in chunks of WINO_CHUNK_BYTES of V and M (a multiple of 16
 * tiles, the last padded, so a shape needs few primitives): the team transforms the chunk's
 * input (vectorised along the channels), the 16 GEMMs [tiles x Ci] . [Ci x Co] run as oneDNN
 * matmuls on the team, and the team transforms the output with the epilogue straight into
 * `out`. A residual that is `out` itself is safe: each output element is read, then
 * written, once. EDM_CPU_WINOGRAD=0 turns it off (oneDNN's direct convolution instead).
 *
 * --precision bf16 runs oneDNN's direct convolution by default: on AMX its GEMMs cost so
 * little that the fp32 transforms are most of a Winograd convolution's time, and the direct
 * one was faster at every batch measured (README). EDM_CPU_WINOGRAD=1 forces Winograd there
 * too: V (rounded by the input transform itself) and U are bf16 for the GEMMs (AMX or
 * AVX512_BF16); the transforms' arithmetic and M stay fp32.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_internal.h"

#define WINO_MIN_CHANNELS 16              /* fewer: the transforms outweigh the GEMMs */
#define WINO_CHUNK_BYTES ((int64_t)8 << 20) /* V + M per chunk of tiles */

int edm_cpu_winograd_applies(const struct cpu_ctx *cx, const edm_tensor *in,
                             const edm_tensor *weight, const edm_tensor *out, int pad) {
    if (!(cx->winograd && weight->h == 3 && weight->w == 3 && pad == 1 && out->h == in->h &&
          out->w == in->w && in->c >= WINO_MIN_CHANNELS && out->c >= WINO_MIN_CHANNELS))
        return 0;
    /* bf16: oneDNN's direct convolution on AMX outruns the transforms (README) */
    return cx->winograd == 2 || !cx->bf16;
}

void edm_cpu_winograd_weights(float *U, const float *w, int Co, int Ci) {
    for (int co = 0; co < Co; co++)
        for (int ci = 0; ci < Ci; ci++) {
            const float *g = w + ((int64_t)co * Ci + ci) * 9;
            float t[4][3]; /* G g */
            for (int c = 0; c < 3; c++) {
                const float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
                t[0][c] = g0;
                t[1][c] = 0.5f * (g0 + g1 + g2);
                t[2][c] = 0.5f * (g0 - g1 + g2);
                t[3][c] = g2;
            }
            for (int i = 0; i < 4; i++) { /* (G g) G^T */
                const float r[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                                    0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
                for (int j = 0; j < 4; j++) U[((int64_t)(i * 4 + j) * Ci + ci) * Co + co] = r[j];
            }
        }
}

#define AS_F32(x) (x)

/* v[e*es + ci] = (B^T d B)[e] for the 4x4 block d[r][c][ci] of each channel, stored as T by
 * STORE (fp32, or bf16 for --precision bf16: the GEMMs' operand, rounded here rather than in
 * a pass of its own). */
#define WINO_TRANSFORM(NAME, T, STORE)                                                           \
    EDM_CPU_CLONES static void NAME(T *restrict v, int64_t es, const float *const d[4][4],          \
                                 int Ci) {                                                       \
        const float *d00 = d[0][0], *d01 = d[0][1], *d02 = d[0][2], *d03 = d[0][3];              \
        const float *d10 = d[1][0], *d11 = d[1][1], *d12 = d[1][2], *d13 = d[1][3];              \
        const float *d20 = d[2][0], *d21 = d[2][1], *d22 = d[2][2], *d23 = d[2][3];              \
        const float *d30 = d[3][0], *d31 = d[3][1], *d32 = d[3][2], *d33 = d[3][3];              \
        _Pragma("omp simd") for (int ci = 0; ci < Ci; ci++) {                                    \
            /* B^T d: rows of the block, column by column */                                     \
            const float a0 = d00[ci] - d20[ci], a1 = d01[ci] - d21[ci], a2 = d02[ci] - d22[ci],  \
                        a3 = d03[ci] - d23[ci];                                                  \
            const float b0 = d10[ci] + d20[ci], b1 = d11[ci] + d21[ci], b2 = d12[ci] + d22[ci],  \
                        b3 = d13[ci] + d23[ci];                                                  \
            const float c0 = d20[ci] - d10[ci], c1 = d21[ci] - d11[ci], c2 = d22[ci] - d12[ci],  \
                        c3 = d23[ci] - d13[ci];                                                  \
            const float e0 = d10[ci] - d30[ci], e1 = d11[ci] - d31[ci], e2 = d12[ci] - d32[ci],  \
                        e3 = d13[ci] - d33[ci];                                                  \
            /* . B */                                                                            \
            v[0 * es + ci] = STORE(a0 - a2), v[1 * es + ci] = STORE(a1 + a2);                    \
            v[2 * es + ci] = STORE(a2 - a1), v[3 * es + ci] = STORE(a1 - a3);                    \
            v[4 * es + ci] = STORE(b0 - b2), v[5 * es + ci] = STORE(b1 + b2);                    \
            v[6 * es + ci] = STORE(b2 - b1), v[7 * es + ci] = STORE(b1 - b3);                    \
            v[8 * es + ci] = STORE(c0 - c2), v[9 * es + ci] = STORE(c1 + c2);                    \
            v[10 * es + ci] = STORE(c2 - c1), v[11 * es + ci] = STORE(c1 - c3);                  \
            v[12 * es + ci] = STORE(e0 - e2), v[13 * es + ci] = STORE(e1 + e2);                  \
            v[14 * es + ci] = STORE(e2 - e1), v[15 * es + ci] = STORE(e1 - e3);                  \
        }                                                                                        \
    }
WINO_TRANSFORM(transform_block, float, AS_F32)
WINO_TRANSFORM(transform_block_bf16, uint16_t, edm_cpu_bf16)

/* v[e][ci] (16 rows of Ci, es apart; bf16 or fp32) for tile t: its 4x4 input block, zero
 * outside the image, transformed. */
static void input_tile(void *v, int bf16, int64_t es, const float *x, int Ci, int H, int W,
                       int th, int tw, int64_t t, const float *zero) {
    const int64_t n = t / ((int64_t)th * tw);
    const int ty = (int)(t / tw % th), tx = (int)(t % tw);
    const float *d[4][4];
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            const int iy = 2 * ty - 1 + r, ix = 2 * tx - 1 + c;
            d[r][c] = iy >= 0 && iy < H && ix >= 0 && ix < W
                          ? x + ((n * H + iy) * W + ix) * (int64_t)Ci
                          : zero;
        }
    if (bf16)
        transform_block_bf16(v, es, d, Ci);
    else
        transform_block(v, es, d, Ci);
}

/* The 2x2 outputs o[k] (k = 2a + b) of one tile from its m[e*es + co] (A^T m A), with the
 * epilogue ((y + bias) + res[k]) * s; bias and res[k] are never NULL (zeros stand in), and
 * res[k] may be o[k] itself (each element is read, then written, in the same iteration). */
EDM_CPU_CLONES static void untransform_block(float *const o[4], const float *const res[4],
                                          const float *m, int64_t es, const float *bias, float s,
                                          int Co) {
    float *o0 = o[0], *o1 = o[1], *o2 = o[2], *o3 = o[3];
    const float *q0 = res[0], *q1 = res[1], *q2 = res[2], *q3 = res[3];
    const float *m0 = m, *m1 = m + es, *m2 = m + 2 * es, *m3 = m + 3 * es; /* row 0 of m */
    const int64_t r = 4 * es; /* between rows */
#pragma omp simd
    for (int co = 0; co < Co; co++) {
        /* A^T m: rows 0 + 1 + 2 and 1 - 2 - 3, column c */
        const float u0 = m0[co] + m0[r + co] + m0[2 * r + co];
        const float u1 = m1[co] + m1[r + co] + m1[2 * r + co];
        const float u2 = m2[co] + m2[r + co] + m2[2 * r + co];
        const float u3 = m3[co] + m3[r + co] + m3[2 * r + co];
        const float w0 = m0[r + co] - m0[2 * r + co] - m0[3 * r + co];
        const float w1 = m1[r + co] - m1[2 * r + co] - m1[3 * r + co];
        const float w2 = m2[r + co] - m2[2 * r + co] - m2[3 * r + co];
        const float w3 = m3[r + co] - m3[2 * r + co] - m3[3 * r + co];
        const float b = bias[co]; /* . A, then the epilogue in the reference's order */
        o0[co] = ((u0 + u1 + u2 + b) + q0[co]) * s;
        o1[co] = ((u1 - u2 - u3 + b) + q1[co]) * s;
        o2[co] = ((w0 + w1 + w2 + b) + q2[co]) * s;
        o3[co] = ((w1 - w2 - w3 + b) + q3[co]) * s;
    }
}

/* out for tile t from its m[e][co], with the epilogue. The pixels of a tile past the
 * image's edge (odd H or W) go to `spill` (Co floats) instead; `zero` (Co zeros) stands in
 * for an absent bias or residual. */
static void output_tile(float *y, const float *m, int64_t es, const float *res, const float *bias,
                        float s, int Co, int H, int W, int th, int tw, int64_t t, const float *zero,
                        float *spill) {
    const int64_t n = t / ((int64_t)th * tw);
    const int ty = (int)(t / tw % th), tx = (int)(t % tw);
    float *o[4];
    const float *q[4];
    for (int k = 0; k < 4; k++) {
        const int oy = 2 * ty + k / 2, ox = 2 * tx + k % 2;
        const int64_t p = ((n * H + oy) * W + ox) * (int64_t)Co;
        const int inside = oy < H && ox < W;
        o[k] = inside ? y + p : spill;
        q[k] = res && inside ? res + p : zero;
    }
    untransform_block(o, q, m, es, bias ? bias : zero, s, Co);
}

int edm_cpu_winograd_conv2d(struct cpu_ctx *cx, edm_tensor *out, const edm_tensor *in,
                            const edm_tensor *weight, const edm_tensor *bias,
                            const edm_tensor *residual, float out_scale, char *msg) {
    const int Ci = in->c, Co = out->c, H = in->h, W = in->w;
    const int th = (H + 1) / 2, tw = (W + 1) / 2;
    const int64_t tiles = (int64_t)in->n * th * tw;
    /* chunks of whole multiples of 16 tiles (the last one padded with zero tiles), so that
     * a shape needs few matmul primitives whatever the batch */
    int64_t chunk = WINO_CHUNK_BYTES / (int64_t)(16 * sizeof(float) * (Ci + Co)) / 16 * 16;
    const int64_t need = (tiles + 15) / 16 * 16;
    chunk = chunk < 16 ? 16 : chunk > need ? need : chunk;
    const int team = edm_cpu_team(cx, 32.0 * Ci * Co * (double)tiles, 4e6);
    const size_t vs = cx->bf16 ? 2 : 4; /* bytes per element of V */
    const size_t v_floats = (size_t)(16 * chunk * Ci), m_floats = (size_t)(16 * chunk * Co);
    const size_t z_floats = (size_t)((Ci > Co ? Ci : Co) + 15) & ~(size_t)15;
    const size_t spill_floats = (size_t)(Co + 15) & ~(size_t)15;
    float *V = edm_cpu_shared_scratch(cx, v_floats + m_floats + z_floats + team * spill_floats, msg);
    if (!V) return 1;
    float *M = V + v_floats, *zero = M + m_floats, *spill = zero + z_floats;
    memset(zero, 0, z_floats * sizeof(float));
    const float *x = cpu_f(in), *b = bias ? cpu_f(bias) : NULL;
    const float *res = residual ? cpu_f(residual) : NULL;
    float *y = cpu_f(out);

    for (int64_t t0 = 0; t0 < tiles; t0 += chunk) {
        const int64_t len = tiles - t0 < chunk ? tiles - t0 : chunk, padded = (len + 15) / 16 * 16;
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t j = 0; j < padded; j++) {
            if (j < len)
                input_tile((char *)V + j * Ci * vs, cx->bf16, padded * Ci, x, Ci, H, W, th, tw,
                           t0 + j, zero);
            else
                for (int e = 0; e < 16; e++)
                    memset((char *)V + (e * padded + j) * Ci * vs, 0, (size_t)Ci * vs);
        }
        if (edm_cpu_dnnl_wino_gemm(cx, weight, V, M, (int)padded, msg)) return 1;
#pragma omp parallel for num_threads(team) schedule(static)
        for (int64_t j = 0; j < len; j++)
            output_tile(y, M + j * Co, padded * Co, res, b, out_scale, Co, H, W, th, tw, t0 + j,
                        zero, spill + (size_t)omp_get_thread_num() * spill_floats);
    }
    return 0;
}
