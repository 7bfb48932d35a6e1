/*
 * fuzz_png.c - libFuzzer target: the PNG decoder (core/io/png_read.c) and the conversion of
 * a decoded image to a model's input (core/io/image_in.c) on arbitrary bytes.
 *
 * Invariants (abort on violation): a failure is EDM_EFORMAT (or EDM_ENOMEM) with a message
 * and a cleared image; a success has 1 or 3 channels, sides within the limits and every
 * value (alpha too) in [0,1]; as an init image of 1 and 3 channels at 8x8 (resized), every value is in
 * [-1,1], and as a mask in [0,1]; the same bytes with a max_side one short of the larger side
 * are refused as too large (field "max_side").
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    edm_png_image img;
    edm_error err = {0};
    enum edm_status st = edm_png_decode(data, size, 0, &img, &err);
    if (st != EDM_OK) {
        FUZZ_ASSERT(st == EDM_EFORMAT || st == EDM_ENOMEM);
        FUZZ_ASSERT(img.data == NULL && img.alpha == NULL && img.W == 0 && err.status == st &&
                    err.message[0]);
        return 0;
    }
    FUZZ_ASSERT(img.data && (img.C == 1 || img.C == 3));
    FUZZ_ASSERT(img.W >= 1 && img.H >= 1 && img.W <= EDM_PNG_MAX_SIDE && img.H <= EDM_PNG_MAX_SIDE);
    const int side = img.W > img.H ? img.W : img.H;
    if (side > 1) {
        edm_png_image small;
        FUZZ_ASSERT(edm_png_decode(data, size, (size_t)side - 1, &small, &err) == EDM_EFORMAT &&
                    !small.data && !strcmp(err.field, "max_side"));
    }
    const size_t count = (size_t)img.W * img.H * img.C;
    for (size_t k = 0; k < count; k++) FUZZ_ASSERT(img.data[k] >= 0 && img.data[k] <= 1);
    for (size_t k = 0; img.alpha && k < (size_t)img.W * img.H; k++)
        FUZZ_ASSERT(img.alpha[k] >= 0 && img.alpha[k] <= 1);
    float out[3 * 8 * 8];
    for (int C = 1; C <= 3; C += 2) {
        FUZZ_ASSERT(edm_png_to_init_image(&img, C, 8, out, &err) == EDM_OK);
        for (int k = 0; k < C * 64; k++) FUZZ_ASSERT(out[k] >= -1 && out[k] <= 1);
    }
    FUZZ_ASSERT(edm_png_to_mask(&img, 8, out, &err) == EDM_OK);
    for (int k = 0; k < 64; k++) FUZZ_ASSERT(out[k] >= 0 && out[k] <= 1);
    edm_png_image_clear(&img);
    return 0;
}

/* For replay.c --expect-reject / --expect-accept: whether the decoder accepts the input. */
int edm_fuzz_accepts(const uint8_t *data, size_t size) {
    edm_png_image img;
    enum edm_status st = edm_png_decode(data, size, 0, &img, NULL);
    edm_png_image_clear(&img);
    return st == EDM_OK;
}
