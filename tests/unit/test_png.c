/*
 * test_png.c - uint8 conversion (core/io/image.c) and PNG encoding (core/io/png.c).
 *
 * The conversion is checked on values where float32 and float64 arithmetic (and a fused
 * multiply-add) give different pixels; expected values come from numpy running the official
 * expression. PNGs are decoded with libpng's read API here and compared exactly.
 */
#include <png.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "edm.h"

static void test_image_values(void) {
    /* numpy: (x*127.5+128).clip(0,255).astype(uint8) in the input's precision. */
    static const struct {
        double x;
        uint8_t want;
    } f64[] = {
        {-0x1.fdfdfdfdfdfe0p-1, 1}, /* exact value is 0.99999..: double rounding gives 1 */
        {-0x1.f9f9f9f9f9fa0p-1, 2},
        {-0x1.ededededededfp-1, 5},
        {0x1.fdfdfdfdfdfdfp-1, 255},
        {0x1.fffffffffffffp-1, 255},
        {-0x1.3333333333333p-2, 89},
        {0.0, 128},
        {-1.0, 0},
        {1.0, 255},
        {0.5, 191},
        {-2.0, 0},
        {3.0, 255},
        {INFINITY, 255},
        {-INFINITY, 0},
        {NAN, 0},
    };
    static const struct {
        float x;
        uint8_t want;
    } f32[] = {
        {-0x1.fdfdfep-1f, 1}, /* float64 arithmetic would give 0 */
        {-0x1.f9f9fap-1f, 2},
        {-0x1.ededeep-1f, 5},
        {0x1.fdfdfep-1f, 255},
        {-0x1.333334p-2f, 89},
        {0.0f, 128},
        {-1.0f, 0},
        {1.0f, 255},
        {INFINITY, 255},
        {-INFINITY, 0},
        {NAN, 0},
    };
    for (size_t i = 0; i < sizeof f64 / sizeof f64[0]; i++) {
        uint8_t got = 77;
        edm_image_to_u8(&f64[i].x, 1, 1, 1, &got);
        CHECK(got == f64[i].want, "f64 %a -> %d, want %d", f64[i].x, got, f64[i].want);
    }
    for (size_t i = 0; i < sizeof f32 / sizeof f32[0]; i++) {
        uint8_t got = 77;
        edm_image_to_u8_f32(&f32[i].x, 1, 1, 1, &got);
        CHECK(got == f32[i].want, "f32 %a -> %d, want %d", (double)f32[i].x, got, f32[i].want);
    }
    /* Every output level is reachable and monotone in x. */
    int prev = -1, monotone = 1, levels = 0;
    for (int i = -1100; i <= 1100; i++) {
        double x = i / 1000.0;
        uint8_t v;
        edm_image_to_u8(&x, 1, 1, 1, &v);
        if (v < prev) monotone = 0;
        if (v != prev) levels++;
        prev = v;
    }
    CHECK(monotone && levels == 256, "monotone %d, %d levels", monotone, levels);
}

static void test_image_layout(void) {
    /* [C=3,H=2,W=3] -> HWC: hwc[(y*W+x)*C + c]. Values chosen so pixel = 128 + code. */
    enum { C = 3, H = 2, W = 3 };
    double x[C * H * W];
    float xf[C * H * W];
    for (int c = 0; c < C; c++)
        for (int p = 0; p < H * W; p++) {
            int code = c * 10 + p; /* < 128 */
            x[c * H * W + p] = code / 127.5;
            xf[c * H * W + p] = (float)(code / 127.5) + 1e-6f;
        }
    uint8_t a[C * H * W], b[C * H * W];
    edm_image_to_u8(x, C, H, W, a);
    edm_image_to_u8_f32(xf, C, H, W, b);
    int ok = 1;
    for (int p = 0; p < H * W; p++)
        for (int c = 0; c < C; c++) {
            int want = 128 + c * 10 + p;
            if (a[p * C + c] != want || b[p * C + c] != want) ok = 0;
        }
    CHECK(ok, "HWC layout");
}

/* ---- PNG decoding with libpng's read API ---------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t n, at;
} mem_src;

static void mem_read(png_structp png, png_bytep out, png_size_t n) {
    mem_src *s = png_get_io_ptr(png);
    if (n > s->n - s->at) png_error(png, "read past end");
    memcpy(out, s->p + s->at, n);
    s->at += n;
}

typedef struct {
    int W, H, color, depth, interlace;
    uint8_t *pix; /* H * W * C */
    int n_text;
    char keys[8][80];
    char values[8][256];
} decoded;

/* Returns 0 on success. */
static int png_decode(const uint8_t *buf, size_t len, decoded *d) {
    memset(d, 0, sizeof *d);
    if (len < 8 || png_sig_cmp(buf, 0, 8)) return -1;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytep *volatile rows = NULL;
    if (!png || !info) return -1;
    mem_src src = {buf, len, 0};
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        free(d->pix);
        d->pix = NULL;
        return -1;
    }
    png_set_read_fn(png, &src, mem_read);
    png_read_info(png, info);
    d->W = (int)png_get_image_width(png, info);
    d->H = (int)png_get_image_height(png, info);
    d->color = png_get_color_type(png, info);
    d->depth = png_get_bit_depth(png, info);
    d->interlace = png_get_interlace_type(png, info);
    int C = png_get_channels(png, info);
    d->pix = malloc((size_t)d->W * d->H * C);
    rows = malloc(sizeof(png_bytep) * (size_t)d->H);
    if (!d->pix || !rows) png_error(png, "oom");
    for (int y = 0; y < d->H; y++) rows[y] = d->pix + (size_t)y * d->W * C;
    png_read_image(png, rows);
    png_read_end(png, info);
    png_textp text;
    int n = 0;
    png_get_text(png, info, &text, &n);
    d->n_text = n;
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(d->keys[i], sizeof d->keys[i], "%s", text[i].key);
        snprintf(d->values[i], sizeof d->values[i], "%s", text[i].text);
    }
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

static void round_trip(int W, int H, int C, int level, int n_text, const char *const *keys,
                       const char *const *values, unsigned seed) {
    size_t n = (size_t)W * H * C;
    uint8_t *pix = malloc(n);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        pix[i] = (uint8_t)(seed >> 16);
    }
    uint8_t *out = NULL;
    size_t len = 0;
    edm_error err = {0};
    enum edm_status st =
        edm_png_encode(pix, W, H, C, keys, values, n_text, level, &out, &len, &err);
    CHECK(st == EDM_OK, "encode %dx%dx%d level %d: %s", W, H, C, level, err.message);
    if (st == EDM_OK) {
        decoded d;
        int rc = png_decode(out, len, &d);
        CHECK(rc == 0, "decode %dx%dx%d", W, H, C);
        if (rc == 0) {
            CHECK(d.W == W && d.H == H, "size %dx%d", d.W, d.H);
            CHECK(d.color == (C == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB), "color %d",
                  d.color);
            CHECK(d.depth == 8 && d.interlace == PNG_INTERLACE_NONE, "depth/interlace");
            CHECK(memcmp(d.pix, pix, n) == 0, "pixels %dx%dx%d level %d", W, H, C, level);
            CHECK(d.n_text == n_text, "text count %d want %d", d.n_text, n_text);
            for (int i = 0; i < n_text && i < d.n_text && i < 8; i++)
                CHECK(!strcmp(d.keys[i], keys[i]) && !strcmp(d.values[i], values[i]),
                      "text %d: '%s'='%s'", i, d.keys[i], d.values[i]);
            free(d.pix);
        }
    }
    free(out);
    free(pix);
}

static void test_png_round_trip(void) {
    const char *keys[] = {"Software", "edm-params", "Comment"};
    const char *values[] = {"edm-serve", "{\"seed\": 42, \"steps\": 18, \"S_churn\": 0}",
                            "caf\xe9 latin-1 and an empty next"};
    round_trip(17, 13, 3, 6, 3, keys, values, 1);
    round_trip(1, 1, 1, 0, 0, NULL, NULL, 2);
    round_trip(1, 1, 3, 9, 1, keys, values, 3);
    round_trip(64, 64, 1, 1, 2, keys, values, 4);
    round_trip(256, 3, 3, 3, 0, NULL, NULL, 5);
    const char *ek[] = {"Empty"}, *ev[] = {""};
    round_trip(5, 7, 3, 9, 1, ek, ev, 6);
    /* Level 0 output is stored: bigger than level 9 on a flat image. */
    static uint8_t flat[64 * 64 * 3];
    uint8_t *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    edm_png_encode(flat, 64, 64, 3, NULL, NULL, 0, 0, &a, &la, NULL);
    edm_png_encode(flat, 64, 64, 3, NULL, NULL, 0, 9, &b, &lb, NULL);
    CHECK(a && b && la > 64 * 64 * 3 && lb < 1000, "level 0: %zu bytes, level 9: %zu", la, lb);
    free(a);
    free(b);
}

static void expect_invalid(const char *what, const uint8_t *pix, int W, int H, int C,
                           const char *const *keys, const char *const *values, int n_text,
                           int level) {
    uint8_t *out = (uint8_t *)1;
    size_t len = 99;
    edm_error err = {0};
    enum edm_status st =
        edm_png_encode(pix, W, H, C, keys, values, n_text, level, &out, &len, &err);
    CHECK(st == EDM_EINVAL, "%s: status %d", what, st);
    CHECK(err.status == st && err.message[0], "%s: message", what);
    CHECK(out == NULL && len == 0, "%s: outputs cleared", what);
}

static void test_png_bad_args(void) {
    static uint8_t pix[16 * 16 * 4];
    const char *ok_k[] = {"k"}, *ok_v[] = {"v"};
    const char *k80[] = {"0123456789012345678901234567890123456789"
                         "0123456789012345678901234567890123456789"};
    const char *klead[] = {" lead"}, *ktrail[] = {"trail "}, *kdouble[] = {"a  b"},
               *kempty[] = {""}, *kctrl[] = {"tab\there"}, *knull[] = {NULL};
    expect_invalid("2 channels", pix, 4, 4, 2, NULL, NULL, 0, 6);
    expect_invalid("4 channels", pix, 4, 4, 4, NULL, NULL, 0, 6);
    expect_invalid("0 channels", pix, 4, 4, 0, NULL, NULL, 0, 6);
    expect_invalid("width 0", pix, 0, 4, 3, NULL, NULL, 0, 6);
    expect_invalid("height -1", pix, 4, -1, 3, NULL, NULL, 0, 6);
    expect_invalid("width 2^30", pix, 1 << 30, 1, 1, NULL, NULL, 0, 6);
    expect_invalid("level 10", pix, 4, 4, 3, NULL, NULL, 0, 10);
    expect_invalid("level -1", pix, 4, 4, 3, NULL, NULL, 0, -1);
    expect_invalid("NULL pixels", NULL, 4, 4, 3, NULL, NULL, 0, 6);
    expect_invalid("n_text -1", pix, 4, 4, 3, ok_k, ok_v, -1, 6);
    expect_invalid("keys NULL", pix, 4, 4, 3, NULL, ok_v, 1, 6);
    expect_invalid("key of 80", pix, 4, 4, 3, k80, ok_v, 1, 6);
    expect_invalid("leading space", pix, 4, 4, 3, klead, ok_v, 1, 6);
    expect_invalid("trailing space", pix, 4, 4, 3, ktrail, ok_v, 1, 6);
    expect_invalid("double space", pix, 4, 4, 3, kdouble, ok_v, 1, 6);
    expect_invalid("empty key", pix, 4, 4, 3, kempty, ok_v, 1, 6);
    expect_invalid("control char", pix, 4, 4, 3, kctrl, ok_v, 1, 6);
    expect_invalid("NULL key", pix, 4, 4, 3, knull, ok_v, 1, 6);
    expect_invalid("NULL value", pix, 4, 4, 3, ok_k, knull, 1, 6);
    size_t len;
    CHECK(edm_png_encode(pix, 4, 4, 3, NULL, NULL, 0, 6, NULL, &len, NULL) == EDM_EINVAL,
          "NULL output pointer");
    /* A 79-character key is the longest allowed. */
    const char *k79[] = {"012345678901234567890123456789012345678901234567890123456789"
                         "0123456789012345678"};
    uint8_t *out = NULL;
    CHECK(edm_png_encode(pix, 4, 4, 3, k79, ok_v, 1, 6, &out, &len, NULL) == EDM_OK, "79 chars");
    free(out);
}

int main(void) {
    test_image_values();
    test_image_layout();
    test_png_round_trip();
    test_png_bad_args();
    return check_finish();
}
