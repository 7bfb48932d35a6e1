/*
 * png.c - PNG encoding into memory with libpng's full write API (include/edm.h).
 *
 * Why the full API: the simplified png_image_write_* API cannot write tEXt chunks, and we
 * store the sampling settings in them. libpng reports errors by longjmp; our error handler
 * copies the message and jumps back into edm_png_encode, which then frees everything.
 * Everything the jump could leave indeterminate (C11 7.13.2.1) is set before setjmp and not
 * changed after it: the output buffer lives in a heap context reached through a pointer that
 * is fixed before setjmp, and the status, the only local written after setjmp, is `volatile`.
 * Grayscale for 1 channel, RGB for 3 (spec 3.3: mode 'L' / 'RGB'), 8 bits, no interlace.
 * Text keys are checked here (1..79 printable Latin-1, no leading/trailing/double spaces),
 * because libpng would only warn and silently drop a bad chunk.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"
#include "status.h"

typedef struct png_sink {
    uint8_t *buf;
    size_t len, cap;
    int oom;
    char msg[256];
} png_sink;

static void png_sink_write(png_structp png, png_bytep data, png_size_t n) {
    png_sink *s = png_get_io_ptr(png);
    if (n > s->cap - s->len) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len < n) {
            if (cap > SIZE_MAX / 2) {
                s->oom = 1;
                png_error(png, "output too large");
            }
            cap *= 2;
        }
        uint8_t *p = realloc(s->buf, cap);
        if (!p) {
            s->oom = 1;
            png_error(png, "out of memory");
        }
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, data, n);
    s->len += n;
}

static void png_sink_flush(png_structp png) {
    (void)png;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_sink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown libpng error");
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) {
    (void)png; /* warnings are not errors; library code does not print */
    (void)msg;
}

/* The PNG spec's keyword rule (11.3.4.3). */
static int png_key_valid(const char *key) {
    size_t n = strlen(key);
    if (n < 1 || n > 79 || key[0] == ' ' || key[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (!((ch >= 32 && ch <= 126) || ch >= 161)) return 0;
        if (ch == ' ' && key[i + 1] == ' ') return 0;
    }
    return 1;
}

enum edm_status edm_png_encode(const uint8_t *hwc, int W, int H, int C, const char *const *keys,
                               const char *const *values, int n_text, int level, uint8_t **png,
                               size_t *png_len, edm_error *err) {
    if (!png || !png_len) return edm_error_set(err, EDM_EINVAL, "png: no output pointer");
    *png = NULL;
    *png_len = 0;
    if (!hwc) return edm_error_set(err, EDM_EINVAL, "png: no pixels");
    if (C != 1 && C != 3)
        return edm_error_set(err, EDM_EINVAL, "png: %d channels (only 1 or 3 are supported)", C);
    if (W < 1 || H < 1 || W > PNG_USER_WIDTH_MAX || H > PNG_USER_HEIGHT_MAX)
        return edm_error_set(err, EDM_EINVAL, "png: size %dx%d out of range 1..%d", W, H,
                             PNG_USER_WIDTH_MAX);
    if (level < 0 || level > 9)
        return edm_error_set(err, EDM_EINVAL, "png: compression level %d not in 0..9", level);
    if (n_text < 0 || (n_text > 0 && (!keys || !values)))
        return edm_error_set(err, EDM_EINVAL, "png: bad text chunk list (%d entries)", n_text);
    for (int i = 0; i < n_text; i++) {
        if (!keys[i] || !values[i])
            return edm_error_set(err, EDM_EINVAL, "png: text chunk %d has no key or value", i);
        if (!png_key_valid(keys[i]))
            return edm_error_set(err, EDM_EINVAL,
                                 "png: text key '%.80s' is not 1-79 printable Latin-1 characters "
                                 "without leading, trailing or double spaces",
                                 keys[i]);
    }

    /* Written after setjmp (in the jump branch), so volatile. */
    volatile enum edm_status st = EDM_ENOMEM;
    png_structp p = NULL;
    png_infop info = NULL;
    png_sink *sink = calloc(1, sizeof *sink);
    png_bytep *rows = malloc((size_t)H * sizeof *rows);
    png_text *text = n_text ? calloc((size_t)n_text, sizeof *text) : NULL;
    if (!sink || !rows || (n_text && !text)) {
        edm_error_set(err, EDM_ENOMEM, "png: out of memory");
        goto fail;
    }
    size_t stride = (size_t)W * (size_t)C;
    for (int y = 0; y < H; y++) rows[y] = (png_bytep)(hwc + (size_t)y * stride);
    for (int i = 0; i < n_text; i++) {
        text[i].compression = PNG_TEXT_COMPRESSION_NONE;
        text[i].key = (png_charp)keys[i];
        text[i].text = (png_charp)values[i];
        text[i].text_length = strlen(values[i]);
    }
    p = png_create_write_struct(PNG_LIBPNG_VER_STRING, sink, png_on_error, png_on_warning);
    if (p) info = png_create_info_struct(p);
    if (!p || !info) {
        edm_error_set(err, EDM_ENOMEM, "png: out of memory creating the encoder");
        goto fail;
    }

    if (setjmp(png_jmpbuf(p))) {
        st = sink->oom ? EDM_ENOMEM : EDM_EINVAL;
        edm_error_set(err, st, "png: %s", sink->msg);
        goto fail;
    }
    png_set_write_fn(p, sink, png_sink_write, png_sink_flush);
    png_set_compression_level(p, level);
    /* Stored data gains nothing from filtering; skip the filter search at level 0. */
    if (level == 0) png_set_filter(p, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_IHDR(p, info, (png_uint_32)W, (png_uint_32)H, 8,
                 C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (n_text) png_set_text(p, info, text, n_text);
    png_write_info(p, info);
    png_write_image(p, rows);
    png_write_end(p, info);

    *png = sink->buf;
    *png_len = sink->len;
    sink->buf = NULL;
    st = EDM_OK;
fail:
    if (p) png_destroy_write_struct(&p, info ? &info : NULL);
    if (sink) free(sink->buf);
    free(sink);
    free(rows);
    free(text);
    return st;
}
