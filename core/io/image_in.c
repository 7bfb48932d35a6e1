/*
 * image_in.c - decoded images as a model's input (include/edm.h): resizing to the model's
 * resolution, channel conversion, the data range. (SHA-256 of the inputs: sha256.c.)
 *
 * Resize filter: separable triangle (bilinear) weights over source pixel centres, the
 * support widened by the scale factor when shrinking so every source pixel contributes
 * (antialiased, the scheme of PIL's Image.resize(BILINEAR)); weights normalised per output
 * pixel, so a constant image stays exactly constant. Same size: an exact copy.
 * Channels: RGB -> gray by luminance 0.299 R + 0.587 G + 0.114 B (ITU-R 601, PIL's "L");
 * gray -> RGB by replication. Init images map [0,1] to [-1,1] by 2 u - 1, so an 8-bit PNG's
 * value v comes back from edm_image_to_u8 as v. Masks (1 = repaint): 1 - alpha where the PNG
 * has transparent pixels (OpenAI's edits convention), else the luminance (white = repaint),
 * so an opaque RGBA export of a black-and-white drawing is read by its colour.
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

int edm_png_transparent(const edm_png_image *img) {
    if (!img->alpha) return 0;
    for (size_t p = 0; p < (size_t)img->W * img->H; p++)
        if (img->alpha[p] < 1) return 1;
    return 0;
}

enum edm_status edm_png_to_mask(const edm_png_image *img, int R, float *out, edm_error *err) {
    if (!edm_png_transparent(img)) {
        enum edm_status st = png_to_channels(img, 1, R, out, err);
        return st != EDM_OK ? st : edm_error_set(err, EDM_OK, NULL);
    }
    /* transparent = repaint: the alpha plane resized, then 1 - alpha */
    const edm_png_image alpha = {.W = img->W, .H = img->H, .C = 1, .data = img->alpha};
    enum edm_status st = png_to_channels(&alpha, 1, R, out, err);
    if (st != EDM_OK) return st;
    for (size_t k = 0; k < (size_t)R * R; k++) out[k] = 1 - out[k];
    return edm_error_set(err, EDM_OK, NULL);
}
