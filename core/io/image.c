/*
 * image.c - sampler output [C,H,W] -> 8-bit HWC pixels, exactly as the official generate.py.
 *
 * The official code (spec 3.3) does (x * 127.5 + 128).clip(0, 255).to(torch.uint8) on the
 * sampler's float64 output: the float->uint8 cast truncates toward zero, so this is
 * round-half-up of x*127.5 + 127.5. We reproduce it bit for bit by doing the multiply-add in
 * the input's own precision (double for edm_image_to_u8, float for edm_image_to_u8_f32),
 * as two separately rounded operations (no FMA: -std=c11 turns contraction off in GCC, and the
 * statements are split so no compiler may fuse them), then clipping, then truncating.
 * NaN has no defined cast in torch; we map it to 0, and +-inf clip to 255 / 0.
 */
#include <math.h>

#include "edm.h"

static uint8_t image_pixel_f64(double x) {
    double v = x * 127.5;
    v = v + 128.0;
    if (!(v >= 0.0)) return 0; /* also NaN */
    if (v >= 255.0) return 255;
    return (uint8_t)v; /* truncation toward zero, as the torch cast */
}

static uint8_t image_pixel_f32(float x) {
    float v = x * 127.5f;
    v = v + 128.0f;
    if (!(v >= 0.0f)) return 0;
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

void edm_image_to_u8(const double *x, int C, int H, int W, uint8_t *hwc) {
    EDM_ASSERT(x && hwc && C > 0 && H > 0 && W > 0);
    size_t plane = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++)
        for (size_t p = 0; p < plane; p++)
            hwc[p * (size_t)C + (size_t)c] = image_pixel_f64(x[(size_t)c * plane + p]);
}

void edm_image_to_u8_f32(const float *x, int C, int H, int W, uint8_t *hwc) {
    EDM_ASSERT(x && hwc && C > 0 && H > 0 && W > 0);
    size_t plane = (size_t)H * (size_t)W;
    for (int c = 0; c < C; c++)
        for (size_t p = 0; p < plane; p++)
            hwc[p * (size_t)C + (size_t)c] = image_pixel_f32(x[(size_t)c * plane + p]);
}
