/*
 * image_req.c - the images of a request that starts from an image (image_req.h).
 *
 * Text to bytes: base64 (RFC 4648 section 4, the standard alphabet; padding optional, ASCII
 * whitespace skipped as MIME line breaks put it there), or an RFC 2397 data URL of a PNG,
 * which is what a browser's canvas.toDataURL() and FileReader give.
 *
 * Bytes to a model's input: the engine's strict PNG decoder, given the server's own size cap
 * (SRV_IMAGE_MAX_SIDE) as its max_side, so that a small file that unpacks to a huge image is
 * refused from its header before any pixel memory is taken. Conversion and
 * resizing are the engine's (edm_png_to_init_image, edm_png_to_mask), as `edm sample` does
 * them, so a request and the command line make the same input from the same file, and the
 * SHA-256 of the bytes as sent is the one both record.
 */
#include "image_req.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "edm.h"

/* The value of a base64 symbol, -1 for another character. */
static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* A data URL's header "data:TYPE[;PARAMS];base64," must name image/png and base64: *start
 * gets the offset of the text after the comma. 0, or the error. */
static enum srv_err data_url_body(const char *text, size_t len, const char *param, size_t *start,
                                  struct srv_error *err) {
    const char *comma = memchr(text, ',', len);
    size_t head = comma ? (size_t)(comma - text) : len;
    static const char want[] = "data:image/png";
    int png = head >= sizeof want - 1 && strncasecmp(text, want, sizeof want - 1) == 0 &&
              (head == sizeof want - 1 || text[sizeof want - 1] == ';');
    int b64 = head >= 7 && strncasecmp(text + head - 7, ";base64", 7) == 0;
    if (!comma || !png || !b64)
        return srv_error_set(err, SRV_E_INVALID_PARAM, param,
                             "'%s': a data URL must be data:image/png;base64,... (got \"%.*s\")", param,
                             (int)(head > 40 ? 40 : head), text);
    *start = head + 1;
    return SRV_OK;
}

enum srv_err srv_image_b64_decode(const char *text, size_t len, const char *param, uint8_t **out,
                                  size_t *out_len, struct srv_error *err) {
    *out = NULL;
    *out_len = 0;
    size_t at = 0;
    while (at < len && isspace((unsigned char)text[at])) at++;
    if (len - at >= 5 && strncasecmp(text + at, "data:", 5) == 0) {
        size_t body = 0;
        enum srv_err rc = data_url_body(text + at, len - at, param, &body, err);
        if (rc) return rc;
        at += body;
    }
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
    uint32_t acc = 0;
    size_t symbols = 0, pads = 0, n = 0;
    for (size_t i = at; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c)) continue;
        int v = b64_value(c);
        if (c == '=' && symbols % 4 >= 2 && pads < 2) {
            pads++;
            continue;
        }
        if (v < 0 || pads) {
            free(buf);
            return srv_error_set(err, SRV_E_INVALID_PARAM, param,
                                 "'%s' is not base64 (a PNG file as base64, or a data:image/png;base64, "
                                 "URL): %s at offset %zu",
                                 param, pads ? "data after the padding" : "a character outside the alphabet", i);
        }
        acc = acc << 6 | (uint32_t)v;
        if (++symbols % 4 == 0) {
            buf[n++] = (uint8_t)(acc >> 16), buf[n++] = (uint8_t)(acc >> 8), buf[n++] = (uint8_t)acc;
            acc = 0;
        }
    }
    switch (symbols % 4) {
    case 2: buf[n++] = (uint8_t)(acc >> 4); break;
    case 3: buf[n++] = (uint8_t)(acc >> 10), buf[n++] = (uint8_t)(acc >> 2); break;
    case 1:
        free(buf);
        return srv_error_set(err, SRV_E_INVALID_PARAM, param, "'%s' is not base64: it is cut short", param);
    }
    if (n == 0) {
        free(buf);
        return srv_error_set(err, SRV_E_INVALID_PARAM, param, "'%s' is empty", param);
    }
    *out = buf;
    *out_len = n;
    return SRV_OK;
}

/* Decodes one PNG of a request into img, within the server's size cap. */
static enum srv_err decode(const uint8_t *png, size_t len, const char *param, edm_png_image *img,
                           struct srv_error *err) {
    edm_error eerr;
    enum edm_status st = edm_png_decode(png, len, SRV_IMAGE_MAX_SIDE, img, &eerr);
    if (st == EDM_ENOMEM) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory decoding '%s'", param);
    if (st != EDM_OK && strcmp(eerr.field, "max_side") == 0) /* the message names size and cap */
        return srv_error_set(err, SRV_E_INVALID_PARAM, param,
                             "'%s' is too large: %s (it is resized to the model's size anyway)",
                             param, eerr.message);
    if (st != EDM_OK)
        return srv_error_set(err, SRV_E_INVALID_PARAM, param, "'%s' is not a usable PNG: %s", param, eerr.message);
    return SRV_OK;
}

/* A decoded image converted by the engine into a new array of count floats at *out. */
static enum srv_err convert(const edm_png_image *img, int is_mask, int C, int R, const char *param,
                            float **out, struct srv_error *err) {
    *out = malloc((size_t)(is_mask ? 1 : C) * R * R * sizeof **out);
    if (!*out) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory for '%s'", param);
    edm_error eerr;
    enum edm_status st = is_mask ? edm_png_to_mask(img, R, *out, &eerr) : edm_png_to_init_image(img, C, R, *out, &eerr);
    if (st == EDM_OK) return SRV_OK;
    free(*out);
    *out = NULL;
    return srv_error_set(err, st == EDM_ENOMEM ? SRV_E_INTERNAL : SRV_E_INVALID_PARAM, param, "'%s': %s", param,
                         eerr.message);
}

void srv_req_image_clear(struct srv_req_image *img) {
    free(img->init_image);
    free(img->mask);
    memset(img, 0, sizeof *img);
}

enum srv_err srv_image_load(const struct srv_image_src *src, int C, int R, struct srv_req_image *out,
                            struct srv_error *err) {
    memset(out, 0, sizeof *out);
    if (!src->image) {
        if (!src->mask) return SRV_OK;
        return srv_error_set(err, SRV_E_INVALID_PARAM, src->mask_param, "'%s' needs an image to repaint ('%s')",
                             src->mask_param, src->image_param);
    }
    edm_png_image img = {0}, mask = {0};
    enum srv_err rc = decode(src->image, src->image_len, src->image_param, &img, err);
    if (!rc) rc = convert(&img, 0, C, R, src->image_param, &out->init_image, err);
    if (!rc) edm_sha256_hex(src->image, src->image_len, out->init_sha256);
    if (!rc && src->mask) {
        rc = decode(src->mask, src->mask_len, src->mask_param, &mask, err);
        if (!rc) rc = convert(&mask, 1, C, R, src->mask_param, &out->mask, err);
        if (!rc) edm_sha256_hex(src->mask, src->mask_len, out->mask_sha256);
    } else if (!rc && src->image_is_mask && edm_png_transparent(&img)) {
        rc = convert(&img, 1, C, R, src->image_param, &out->mask, err);
        if (!rc) memcpy(out->mask_sha256, out->init_sha256, sizeof out->mask_sha256);
    }
    edm_png_image_clear(&img);
    edm_png_image_clear(&mask);
    if (rc) srv_req_image_clear(out);
    return rc;
}
