/*
 * image_in.c - decoded images as a model's input (include/edm.h): resizing to the model's
 * resolution, channel conversion, the data range; and SHA-256 for recording the inputs.
 *
 * Resize filter: separable triangle (bilinear) weights over source pixel centres, the
 * support widened by the scale factor when shrinking so every source pixel contributes
 * (antialiased, the scheme of PIL's Image.resize(BILINEAR)); weights normalised per output
 * pixel, so a constant image stays exactly constant. Same size: an exact copy.
 * Channels: RGB -> gray by luminance 0.299 R + 0.587 G + 0.114 B (ITU-R 601, PIL's "L");
 * gray -> RGB by replication. Init images map [0,1] to [-1,1] by 2 u - 1, so an 8-bit PNG's
 * value v comes back from edm_image_to_u8 as v.
 * SHA-256: FIPS 180-4.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"
#include "status.h"

/* One axis: out[i] = sum_j w[i][j] in[j]; for each of R outputs, the first source index and
 * up to `taps` normalised weights. */
typedef struct axis_weights {
    int taps;
    int *first; /* [R] */
    double *w;  /* [R][taps] */
} axis_weights;

static int axis_make(int in, int R, axis_weights *a) {
    const double scale = (double)in / R, support = scale > 1 ? scale : 1;
    a->taps = (int)ceil(support) * 2 + 1;
    a->first = malloc((size_t)R * sizeof *a->first);
    a->w = calloc((size_t)R * a->taps, sizeof *a->w);
    if (!a->first || !a->w) return -1;
    for (int i = 0; i < R; i++) {
        const double centre = (i + 0.5) * scale - 0.5;
        int lo = (int)floor(centre - support) + 1;
        if (lo < 0) lo = 0;
        double sum = 0;
        a->first[i] = lo;
        for (int t = 0; t < a->taps && lo + t < in; t++) {
            double d = fabs(lo + t - centre) / support;
            double w = d < 1 ? 1 - d : 0;
            a->w[(size_t)i * a->taps + t] = w;
            sum += w;
        }
        if (sum <= 0) { /* cannot happen for R >= 1, in >= 1; keep the nearest pixel */
            a->first[i] = (int)fmin(fmax(lround(centre), 0), in - 1);
            a->w[(size_t)i * a->taps] = sum = 1;
        }
        for (int t = 0; t < a->taps; t++) a->w[(size_t)i * a->taps + t] /= sum;
    }
    return 0;
}

static void axis_free(axis_weights *a) {
    free(a->first);
    free(a->w);
}

void edm_image_resize(const float *src, int C, int H, int W, int R, float *dst) {
    EDM_ASSERT(C > 0 && H > 0 && W > 0 && R > 0);
    if (H == R && W == R) {
        memcpy(dst, src, (size_t)C * R * R * sizeof *dst);
        return;
    }
    axis_weights ax = {0}, ay = {0};
    double *tmp = malloc((size_t)H * R * sizeof *tmp);
    /* a resize of a decoded PNG is small (4096 x 4096 at most); out of memory is fatal */
    EDM_ASSERT(tmp && axis_make(W, R, &ax) == 0 && axis_make(H, R, &ay) == 0);
    for (int c = 0; c < C; c++) {
        const float *plane = src + (size_t)c * H * W;
        for (int y = 0; y < H; y++) /* rows: W -> R */
            for (int i = 0; i < R; i++) {
                double acc = 0;
                for (int t = 0; t < ax.taps && ax.first[i] + t < W; t++)
                    acc += ax.w[(size_t)i * ax.taps + t] * plane[(size_t)y * W + ax.first[i] + t];
                tmp[(size_t)y * R + i] = acc;
            }
        for (int j = 0; j < R; j++) /* columns: H -> R */
            for (int i = 0; i < R; i++) {
                double acc = 0;
                for (int t = 0; t < ay.taps && ay.first[j] + t < H; t++)
                    acc += ay.w[(size_t)j * ay.taps + t] * tmp[(size_t)(ay.first[j] + t) * R + i];
                dst[((size_t)c * R + j) * R + i] = (float)acc;
            }
    }
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
}

/* img as C channels of R x R in [0,1] (converted, then resized). */
static enum edm_status png_to_channels(const edm_png_image *img, int C, int R, float *out,
                                       edm_error *err) {
    if ((C != 1 && C != 3) || R < 1)
        return edm_error_set(err, EDM_EUNSUPPORTED, "images of %d channels are not supported", C);
    const size_t plane = (size_t)img->W * img->H;
    float *conv = malloc(plane * C * sizeof *conv);
    if (!conv) return edm_error_set(err, EDM_ENOMEM, "out of memory for an image");
    for (size_t p = 0; p < plane; p++) {
        if (img->C == C) {
            for (int c = 0; c < C; c++) conv[c * plane + p] = img->data[c * plane + p];
        } else if (C == 1) { /* RGB -> luminance */
            conv[p] = (float)(0.299 * img->data[p] + 0.587 * img->data[plane + p] +
                              0.114 * img->data[2 * plane + p]);
        } else { /* gray -> RGB */
            for (int c = 0; c < 3; c++) conv[c * plane + p] = img->data[p];
        }
    }
    edm_image_resize(conv, C, img->H, img->W, R, out);
    free(conv);
    for (size_t k = 0; k < (size_t)C * R * R; k++) out[k] = fminf(fmaxf(out[k], 0), 1);
    return EDM_OK;
}

enum edm_status edm_png_to_init_image(const edm_png_image *img, int C, int R, float *out,
                                      edm_error *err) {
    enum edm_status st = png_to_channels(img, C, R, out, err);
    if (st != EDM_OK) return st;
    for (size_t k = 0; k < (size_t)C * R * R; k++) out[k] = 2 * out[k] - 1;
    return edm_error_set(err, EDM_OK, NULL);
}

enum edm_status edm_png_to_mask(const edm_png_image *img, int R, float *out, edm_error *err) {
    enum edm_status st = png_to_channels(img, 1, R, out, err);
    return st != EDM_OK ? st : edm_error_set(err, EDM_OK, NULL);
}

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------------------------- */

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += k;
}

void edm_sha256_hex(const uint8_t *data, size_t len, char hex[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t full = len / 64 * 64;
    for (size_t at = 0; at < full; at += 64) sha256_block(h, data + at);
    uint8_t tail[128] = {0};
    size_t rest = len - full, tail_len = rest + 9 <= 64 ? 64 : 128;
    if (rest) memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    const uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t at = 0; at < tail_len; at += 64) sha256_block(h, tail + at);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", h[i]);
}
