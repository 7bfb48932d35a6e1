/*
 * image_req.h - the images of a request that starts from an image: from the bytes a client
 * sent (base64 or a data: URL in JSON, a file part of a form) to a model's input, with the
 * server's limits, and the SHA-256 that the PNG text records.
 *
 * Pure: bytes in, floats and hashes or an error naming the field out (the fuzz targets run
 * it). Ownership: srv_image_load fills a struct srv_req_image that owns its arrays until
 * srv_req_image_clear; srv_image_b64_decode returns a new buffer (free with free()).
 */
#ifndef SRV_IMAGE_REQ_H
#define SRV_IMAGE_REQ_H

#include <stddef.h>
#include <stdint.h>

#include "errors.h"

/* The largest image side a request may send (the engine's decoder takes up to 4096: a
 * compressed 4096 x 4096 PNG can be tiny on the wire and 256 MB in floats). */
#define SRV_IMAGE_MAX_SIDE 1024

/* A start from an image, ready for edm_sample_init. */
struct srv_req_image {
    float *init_image;       /* [C,R,R] in [-1,1], or NULL: from noise; owned */
    float *mask;             /* [R,R] in [0,1], 1 = repaint, or NULL; owned */
    char init_sha256[65];    /* SHA-256 of the init image's PNG bytes, "" without one */
    char mask_sha256[65];    /* of the mask's (the image's own when it is its mask), or "" */
};

/* The PNG bytes of a request (borrowed) and the names its errors use. */
struct srv_image_src {
    const uint8_t *image, *mask; /* NULL: not sent */
    size_t image_len, mask_len;
    const char *image_param, *mask_param; /* "init_image" (JSON) or "image" (a form); "mask" */
    int image_is_mask; /* OpenAI's edits: without a mask, an image with transparent pixels is
                          its own mask (edm_png_to_mask: transparent = repaint) */
};

/* Decodes base64 text[0..len) (standard alphabet, '=' padding optional, ASCII whitespace
 * skipped), or a data URL "data:image/png;base64,..." of it, into a new buffer. Errors are
 * 400 invalid_parameter naming param: not base64 (where), a data URL of another type, empty. */
enum srv_err srv_image_b64_decode(const char *text, size_t len, const char *param, uint8_t **out,
                                  size_t *out_len, struct srv_error *err);

/* Decodes src's PNGs for a model of C channels at R x R (edm_png_to_init_image,
 * edm_png_to_mask: resized, channels converted) and hashes them. A PNG past
 * SRV_IMAGE_MAX_SIDE, or one the decoder refuses, is a 400 naming its field. On error out
 * holds nothing. */
enum srv_err srv_image_load(const struct srv_image_src *src, int C, int R, struct srv_req_image *out,
                            struct srv_error *err);
void srv_req_image_clear(struct srv_req_image *img);

#endif /* SRV_IMAGE_REQ_H */
