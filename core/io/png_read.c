/*
 * png_read.c - PNG decoding from memory with libpng's read API (include/edm.h), for init
 * images and masks that arrive from users: every input is hostile until proven otherwise.
 *
 * Limits, checked before any pixel memory is allocated: at most EDM_PNG_MAX_BYTES of input,
 * the caller's max_side (at most EDM_PNG_MAX_SIDE) pixels a side and EDM_PNG_MAX_PIXELS in
 * all (the sides read from the IHDR before libpng starts, and also given to libpng as its
 * user limits, so an oversized image is refused even in a file that is only a header), ancillary chunks cached at most 256 and
 * 1 MiB each (a flood of text chunks or a zip bomb in iCCP/zTXt is an error, not memory).
 * Before libpng sees the input, its chunk list is walked here (chunks_fit): every chunk's
 * length must fit in the bytes that follow it, and an ancillary chunk's be at most that 1 MiB.
 * Transformations: palette and gray below 8 bits expanded, tRNS turned to alpha, 16-bit kept,
 * interlacing undone. Output: [C,H,W] floats v / (2^depth - 1), the colour as stored, and the
 * alpha channel apart ([H,W], the same scale) when there is one: masks read transparency
 * (image_in.c).
 *
 * libpng reports errors by longjmp: everything the jump could leave indeterminate lives in a
 * heap context fixed before setjmp (C11 7.13.2.1); the one local written after setjmp is the
 * volatile status. Warnings are ignored.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"
#include "status.h"

typedef struct png_source {
    const uint8_t *data;
    size_t len, pos;
    png_uint_32 max_side; /* the side limit in force, 1..EDM_PNG_MAX_SIDE */
    uint8_t *pixels; /* the decoded rows, owned until handed over */
    png_bytep *rows;
    char msg[256];
} png_source;

/* The most an ancillary chunk may hold: given to libpng (png_set_chunk_malloc_max), and
 * checked in chunks_fit since libpng does not hold tEXt to it. */
#define PNG_ANCILLARY_MAX (1u << 20)

static void source_read(png_structp png, png_bytep out, png_size_t n) {
    png_source *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated file");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void source_error(png_structp png, png_const_charp msg) {
    png_source *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void source_warning(png_structp png, png_const_charp msg) {
    (void)png, (void)msg;
}

void edm_png_image_clear(edm_png_image *img) {
    if (!img) return;
    free(img->data);
    free(img->alpha);
    memset(img, 0, sizeof *img);
}

/* The side limit for a caller's max_side: 0 (the default) and anything past the engine's own
 * limit mean EDM_PNG_MAX_SIDE, so no caller can raise what the decoder will allocate. */
static png_uint_32 side_limit(size_t max_side) {
    return max_side == 0 || max_side > EDM_PNG_MAX_SIDE ? EDM_PNG_MAX_SIDE : (png_uint_32)max_side;
}

/* The refusal of a W x H image past the side limit. The field lets a caller tell "too large"
 * from "malformed" without reading the message (a server adds its own advice). */
static enum edm_status side_error(png_uint_32 W, png_uint_32 H, png_uint_32 limit, edm_error *err) {
    return edm_error_set_field(err, EDM_EFORMAT, "max_side",
                               "PNG of %ux%u pixels: at most %u a side", (unsigned)W, (unsigned)H,
                               (unsigned)limit);
}

/* The chunk list of png[0..len) (signature already checked), walked up to IEND before libpng
 * reads any of it: 0, or EDM_EFORMAT for a chunk whose length is past the PNG limit (2^31 - 1)
 * or the bytes left after its header, an ancillary chunk (type's first letter lowercase)
 * past PNG_ANCILLARY_MAX, or an IHDR whose width or height is past max_side (field
 * "max_side", the message naming both: libpng's own refusal says only "Invalid IHDR data").
 * Why: libpng allocates (and zeroes) a chunk's claimed length before it reads the data,
 * whatever png_set_chunk_malloc_max says (1.6.39 for tEXt): an 89-byte file whose tEXt claims
 * 0x79000006 bytes cost 2 GB. The whole input is in memory, so the claims are checked against
 * it; the limits then hold whatever libpng's checks become. A chunk header cut short, a CRC
 * cut short or wrong, a bad type, an IHDR that is not first: libpng's to refuse. */
static enum edm_status chunks_fit(const uint8_t *png, size_t len, png_uint_32 max_side,
                                  edm_error *err) {
    for (size_t pos = 8; len - pos >= 8;) {
        const uint8_t *c = png + pos;
        const uint32_t n = png_get_uint_32(c);
        const size_t left = len - pos - 8; /* after the length and the type */
        const int too_long = n > 0x7fffffffu || n > left;
        if (too_long || ((c[4] & 0x20) && n > PNG_ANCILLARY_MAX)) {
            char type[20] = ""; /* letters as they are, other bytes as [XX] */
            for (int k = 4; k < 8; k++) {
                const int letter = (c[k] | 0x20) >= 'a' && (c[k] | 0x20) <= 'z';
                snprintf(type + strlen(type), sizeof type - strlen(type), letter ? "%c" : "[%02X]",
                         c[k]);
            }
            if (too_long)
                return edm_error_set(err, EDM_EFORMAT,
                                     "bad PNG: chunk %s claims %lu bytes, %zu remain", type,
                                     (unsigned long)n, left);
            return edm_error_set(err, EDM_EFORMAT,
                                 "bad PNG: ancillary chunk %s of %lu bytes: at most %u", type,
                                 (unsigned long)n, PNG_ANCILLARY_MAX);
        }
        if (!memcmp(c + 4, "IHDR", 4) && n >= 8) {
            const png_uint_32 W = png_get_uint_32(c + 8), H = png_get_uint_32(c + 12);
            if (W > max_side || H > max_side) return side_error(W, H, max_side, err);
        }
        if (!memcmp(c + 4, "IEND", 4)) break;
        pos += 8 + (size_t)n + (left - n >= 4 ? 4 : left - n); /* the CRC, as far as it goes */
    }
    return EDM_OK;
}

/* Reads the header and the pixels into ctx (8 or 16-bit gray or RGB rows, each followed by
 * alpha when *has_alpha); 0 or an error. */
static enum edm_status png_read_pixels(png_structp png, png_infop info, png_source *ctx,
                                       edm_png_image *out, int *depth, int *has_alpha,
                                       edm_error *err) {
    png_set_read_fn(png, ctx, source_read);
    png_set_user_limits(png, ctx->max_side, ctx->max_side);
    png_set_chunk_cache_max(png, 256);
    png_set_chunk_malloc_max(png, PNG_ANCILLARY_MAX);
    png_read_info(png, info);
    png_uint_32 W = 0, H = 0;
    int bit_depth = 0, color = 0, interlace = 0;
    png_get_IHDR(png, info, &W, &H, &bit_depth, &color, &interlace, NULL, NULL);
    /* chunks_fit refused these sides already, and libpng does too (user limits); kept so the
     * limit holds here, before the allocation, whatever reaches this point */
    if (W > ctx->max_side || H > ctx->max_side) return side_error(W, H, ctx->max_side, err);
    if (W == 0 || H == 0 || (uint64_t)W * H > EDM_PNG_MAX_PIXELS)
        return edm_error_set(err, EDM_EFORMAT, "PNG of %ux%u pixels: empty, or past %d in all",
                             (unsigned)W, (unsigned)H, EDM_PNG_MAX_PIXELS);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_swap(png); /* host order (little-endian) below */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    const int channels = png_get_channels(png, info); /* colour, then alpha if any */
    *has_alpha = channels == 2 || channels == 4;
    *depth = png_get_bit_depth(png, info);
    const size_t rowbytes = png_get_rowbytes(png, info);
    if (channels < 1 || channels > 4 || (*depth != 8 && *depth != 16) ||
        rowbytes != (size_t)W * channels * (*depth / 8))
        return edm_error_set(err, EDM_EFORMAT, "PNG layout not understood (%d channels, %d bits)",
                             channels, *depth);
    const int C = channels - *has_alpha;
    ctx->pixels = malloc(rowbytes * H);
    ctx->rows = malloc(H * sizeof *ctx->rows);
    if (!ctx->pixels || !ctx->rows)
        return edm_error_set(err, EDM_ENOMEM, "out of memory for a %ux%u PNG", (unsigned)W,
                             (unsigned)H);
    for (png_uint_32 r = 0; r < H; r++) ctx->rows[r] = ctx->pixels + r * rowbytes;
    png_read_image(png, ctx->rows);
    png_read_end(png, NULL);
    out->W = (int)W, out->H = (int)H, out->C = C;
    return EDM_OK;
}

enum edm_status edm_png_decode(const uint8_t *data, size_t len, size_t max_side,
                               edm_png_image *out, edm_error *err) {
    memset(out, 0, sizeof *out);
    if (len > EDM_PNG_MAX_BYTES)
        return edm_error_set(err, EDM_EFORMAT, "PNG of %zu bytes: at most %u", len,
                             EDM_PNG_MAX_BYTES);
    if (len < 8 || png_sig_cmp(data, 0, 8))
        return edm_error_set(err, EDM_EFORMAT, "not a PNG file (bad signature)");
    const png_uint_32 limit = side_limit(max_side);
    enum edm_status fit = chunks_fit(data, len, limit, err);
    if (fit != EDM_OK) return fit;
    png_source *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return edm_error_set(err, EDM_ENOMEM, "out of memory for a PNG decoder");
    ctx->data = data;
    ctx->len = len;
    ctx->max_side = limit;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, source_error,
                                             source_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    volatile enum edm_status st = EDM_OK;
    int depth = 8, has_alpha = 0;
    if (!png || !info) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory for a PNG decoder");
    } else if (setjmp(png_jmpbuf(png))) {
        st = edm_error_set(err, EDM_EFORMAT, "bad PNG: %s", ctx->msg);
    } else {
        st = png_read_pixels(png, info, ctx, out, &depth, &has_alpha, err);
    }
    png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
    const size_t plane = (size_t)out->W * out->H;
    if (st == EDM_OK) {
        out->data = malloc(plane * out->C * sizeof *out->data);
        out->alpha = has_alpha ? malloc(plane * sizeof *out->alpha) : NULL;
        if (!out->data || (has_alpha && !out->alpha))
            st = edm_error_set(err, EDM_ENOMEM, "out of memory for a PNG's pixels");
    }
    if (st == EDM_OK) {
        /* interleaved HWC rows (colour, then alpha) -> CHW floats and the alpha plane */
        const double scale = depth == 16 ? 1.0 / 65535 : 1.0 / 255;
        const int channels = out->C + has_alpha;
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < channels; c++) {
                const size_t at = p * channels + c;
                unsigned v = depth == 16 ? (unsigned)ctx->pixels[2 * at] |
                                               (unsigned)ctx->pixels[2 * at + 1] << 8
                                         : ctx->pixels[at];
                if (c < out->C) out->data[c * plane + p] = (float)(v * scale);
                else out->alpha[p] = (float)(v * scale);
            }
    }
    free(ctx->pixels);
    free(ctx->rows);
    free(ctx);
    if (st != EDM_OK) {
        edm_png_image_clear(out);
        return st;
    }
    return edm_error_set(err, EDM_OK, NULL);
}
