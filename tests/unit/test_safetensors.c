/*
 * test_safetensors.c - the safetensors reader (core/io/safetensors.c) on good files and on
 * hostile ones: every truncation of a small file, wrong header lengths, lying and overlapping
 * offsets, bad dtypes and shapes, non-string metadata, duplicate keys, bad UTF-8 and single
 * byte mutations. Every bad file must fail with EDM_EFORMAT and a message naming the problem,
 * leave *out NULL, and (under ASan) touch no byte outside the input. Also SHA-256 (the
 * model file's identity, core/io/sha256.c) on the FIPS 180-4 vectors and every padding edge.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "edm.h"
#include "io/safetensors.h"
#include "io/sha256.h"

/* u64 N | header (+ pad spaces) | data. Returns the length. */
static size_t build(uint8_t *buf, size_t cap, const char *header, size_t pad, const void *data,
                    size_t data_len) {
    size_t h = strlen(header), n = h + pad;
    if (8 + n + data_len > cap) abort();
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', pad);
    if (data_len) memcpy(buf + 8 + n, data, data_len);
    return 8 + n + data_len;
}

/* Opens a private exact-size copy (so ASan sees any overread of the caller's bytes too). */
static enum edm_status open_copy(const uint8_t *buf, size_t len, edm_st_file **f,
                                 edm_error *err) {
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    *f = (edm_st_file *)1;
    enum edm_status st = edm_st_open_mem(copy, len, "t.safetensors", f, err);
    free(copy);
    return st;
}

/* ---- a good file ----------------------------------------------------------------------------- */

static const char *good_header =
    "{\"a\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},"
    "\"__metadata__\":{\"edm_config\":\"{\\\"format\\\": \\\"edm-safetensors/1\\\"}\","
    "\"name\":\"caf\xc3\xa9\"},"
    "\"b\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[34,34]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[32,34]}}";

static size_t good_file(uint8_t *buf, size_t cap, size_t pad) {
    uint8_t data[34];
    for (int i = 0; i < 6; i++) { /* b = 0.5 * i - 1 */
        float v = 0.5f * (float)i - 1.0f;
        uint32_t u;
        memcpy(&u, &v, 4);
        for (int k = 0; k < 4; k++) data[4 * i + k] = (uint8_t)(u >> (8 * k));
    }
    /* a (F16): 1.0, -2.0, smallest subnormal, +inf */
    static const uint16_t a[4] = {0x3c00, 0xc000, 0x0001, 0x7c00};
    for (int i = 0; i < 4; i++) data[24 + 2 * i] = (uint8_t)a[i], data[25 + 2 * i] = a[i] >> 8;
    data[32] = 0x40, data[33] = 0x40; /* c (BF16) 0x4040 = 3.0 */
    return build(buf, cap, good_header, pad, data, sizeof data);
}

static void test_good(void) {
    static uint8_t buf[4096];
    for (size_t pad = 0; pad <= 7; pad += 7) {
        size_t len = good_file(buf, sizeof buf, pad);
        edm_st_file *f;
        edm_error err = {0};
        enum edm_status st = open_copy(buf, len, &f, &err);
        CHECK(st == EDM_OK, "good file (pad %zu): %s", pad, err.message);
        if (st) return;
        CHECK(edm_st_count(f) == 4, "count %d", edm_st_count(f));
        /* file order = data order, not header order */
        const char *order[] = {"b", "a", "c", "z"};
        for (int i = 0; i < 4 && i < edm_st_count(f); i++)
            CHECK(!strcmp(edm_st_at(f, i)->name, order[i]), "at(%d) = %s want %s", i,
                  edm_st_at(f, i)->name, order[i]);
        const edm_st_tensor *b = edm_st_find(f, "b"), *a = edm_st_find(f, "a"),
                            *c = edm_st_find(f, "c"), *z = edm_st_find(f, "z");
        CHECK(a && b && c && z, "find");
        CHECK(!edm_st_find(f, "nope") && !edm_st_find(f, "__metadata__") &&
                  !edm_st_find(f, ""),
              "find misses");
        if (!(a && b && c && z)) {
            edm_st_close(f);
            return;
        }
        CHECK(b->dtype == EDM_F32 && b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 3 &&
                  b->numel == 6 && b->begin == 0 && b->end == 24,
              "b fields");
        CHECK(a->dtype == EDM_F16 && a->ndim == 1 && a->numel == 4, "a fields");
        CHECK(c->dtype == EDM_BF16 && c->ndim == 0 && c->numel == 1, "c fields (scalar)");
        CHECK(z->ndim == 2 && z->numel == 0 && z->begin == 34 && z->end == 34, "z fields");
        float v[6];
        CHECK(edm_st_read_f32(f, b, v, 6, &err) == EDM_OK, "read b: %s", err.message);
        int ok = 1;
        for (int i = 0; i < 6; i++) ok &= v[i] == 0.5f * (float)i - 1.0f;
        CHECK(ok, "b values");
        CHECK(edm_st_read_f32(f, a, v, 4, &err) == EDM_OK, "read a");
        CHECK(v[0] == 1.0f && v[1] == -2.0f && v[2] == 0x1p-24f && isinf(v[3]) && v[3] > 0,
              "a values %g %g %g %g", v[0], v[1], v[2], v[3]);
        CHECK(edm_st_read_f32(f, c, v, 1, &err) == EDM_OK && v[0] == 3.0f, "c value");
        CHECK(edm_st_read_f32(f, z, NULL, 0, &err) == EDM_OK, "z (empty)");
        CHECK(edm_st_read_f32(f, b, v, 5, &err) == EDM_EINVAL && strstr(err.message, "'b'"),
              "wrong destination size: %s", err.message);
        const uint8_t *raw = edm_st_data(f, c);
        CHECK(raw[0] == 0x40 && raw[1] == 0x40, "raw bytes");
        CHECK(edm_st_metadata(f, "name") && !strcmp(edm_st_metadata(f, "name"), "caf\xc3\xa9"),
              "metadata name");
        CHECK(edm_st_metadata(f, "edm_config") &&
                  !strcmp(edm_st_metadata(f, "edm_config"),
                          "{\"format\": \"edm-safetensors/1\"}"),
              "metadata edm_config");
        CHECK(edm_st_metadata(f, "missing") == NULL, "metadata miss");
        CHECK(edm_st_metadata_count(f) == 2, "metadata count");
        const char *k, *val;
        edm_st_metadata_at(f, 1, &k, &val);
        CHECK(!strcmp(k, "name") && !strcmp(val, "caf\xc3\xa9"), "metadata_at keeps order");
        edm_st_close(f);
    }
    edm_st_close(NULL);

    /* Minimal files: no tensors, no metadata. */
    edm_st_file *f;
    edm_error err;
    size_t len = build(buf, sizeof buf, "{}", 0, NULL, 0);
    CHECK(open_copy(buf, len, &f, &err) == EDM_OK && edm_st_count(f) == 0 &&
              edm_st_metadata_count(f) == 0,
          "empty header");
    edm_st_close(f);
    len = build(buf, sizeof buf, "{\"__metadata__\":{}}", 5, NULL, 0);
    CHECK(open_copy(buf, len, &f, &err) == EDM_OK, "empty metadata: %s", err.message);
    edm_st_close(f);
}

/* Every binary16 value converts exactly (reference: sign * 2^(e-15) * (1 + m/1024) in double). */
static void test_f16_exhaustive(void) {
    enum { N = 65536 };
    static uint8_t buf[8 + 128 + 2 * N];
    static uint8_t data[2 * N];
    static float out[N];
    for (int i = 0; i < N; i++) data[2 * i] = (uint8_t)i, data[2 * i + 1] = (uint8_t)(i >> 8);
    size_t len = build(buf, sizeof buf,
                       "{\"h\":{\"dtype\":\"F16\",\"shape\":[256,256],\"data_offsets\":[0,131072]}}",
                       0, data, sizeof data);
    edm_st_file *f;
    edm_error err;
    if (open_copy(buf, len, &f, &err) != EDM_OK) {
        CHECK(0, "f16 file: %s", err.message);
        return;
    }
    CHECK(edm_st_read_f32(f, edm_st_at(f, 0), out, N, &err) == EDM_OK, "read");
    int bad = 0;
    for (int i = 0; i < N; i++) {
        int s = i >> 15, e = (i >> 10) & 31, m = i & 1023;
        double want;
        if (e == 31) want = m ? NAN : INFINITY;
        else if (e == 0) want = ldexp(m, -24);
        else want = ldexp(1024 + m, e - 25);
        if (s) want = -want;
        float got = out[i];
        if (isnan(want) ? !isnan(got) : (got != (float)want || !signbit(got) != !signbit(want))) {
            if (bad++ < 5) fprintf(stderr, "f16 %04x -> %a want %a\n", i, got, want);
        }
    }
    CHECK(bad == 0, "%d binary16 values converted wrongly", bad);
    /* BF16 is the top half of a float. */
    buf[8 + strlen("{\"h\":{\"dtype\":\"")] = 'B';
    len = build(buf, sizeof buf,
                "{\"h\":{\"dtype\":\"BF16\",\"shape\":[65536],\"data_offsets\":[0,131072]}}", 0,
                data, sizeof data);
    edm_st_close(f);
    if (open_copy(buf, len, &f, &err) == EDM_OK) {
        edm_st_read_f32(f, edm_st_at(f, 0), out, N, &err);
        int badb = 0;
        for (int i = 0; i < N; i++) {
            uint32_t u;
            memcpy(&u, &out[i], 4);
            badb += u != (uint32_t)i << 16;
        }
        CHECK(badb == 0, "%d bf16 values wrong", badb);
        edm_st_close(f);
    } else {
        CHECK(0, "bf16 file: %s", err.message);
    }
}

/* ---- hostile files ------------------------------------------------------------------------------ */

static void expect_bad(const char *what, const uint8_t *buf, size_t len, const char *needle) {
    edm_st_file *f;
    edm_error err = {0};
    enum edm_status st = open_copy(buf, len, &f, &err);
    CHECK(st == EDM_EFORMAT, "%s: status %d (%s)", what, st, err.message);
    CHECK(f == NULL, "%s: *out left NULL", what);
    CHECK(err.status == st, "%s: err.status", what);
    CHECK(!needle || strstr(err.message, needle), "%s: message '%s' lacks '%s'", what,
          err.message, needle ? needle : "");
    if (st == EDM_OK) edm_st_close(f);
}

/* A header with `data_len` zero bytes of data. */
static void expect_bad_header(const char *header, size_t data_len, const char *needle) {
    static uint8_t buf[8192], zeros[1024];
    size_t len = build(buf, sizeof buf, header, 0, zeros, data_len);
    expect_bad(header, buf, len, needle);
}

static void test_lengths(void) {
    static uint8_t buf[4096];
    size_t len = good_file(buf, sizeof buf, 0);
    /* Every proper prefix. */
    int all = 1;
    for (size_t n = 0; n < len; n++) {
        edm_st_file *f;
        edm_error err;
        if (open_copy(buf, n, &f, &err) != EDM_EFORMAT || f) all = 0;
    }
    CHECK(all, "every truncation rejected");
    /* One extra byte of data. */
    buf[len] = 0;
    expect_bad("trailing byte", buf, len + 1, "after the last tensor");

    /* Header lengths that lie. */
    uint64_t lies[] = {0, 1, 2, 100, (uint64_t)len - 8 + 1, 1ull << 40, UINT64_MAX,
                       (uint64_t)EDM_ST_MAX_HEADER + 1};
    const char *needles[] = {"'{'", "'{'", "JSON", "JSON", "exceeds", "exceeds", "exceeds",
                             "exceeds"};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        uint8_t copy[4096];
        memcpy(copy, buf, len);
        for (int k = 0; k < 8; k++) copy[k] = (uint8_t)(lies[i] >> (8 * k));
        char what[64];
        snprintf(what, sizeof what, "header length %llu", (unsigned long long)lies[i]);
        expect_bad(what, copy, len, needles[i]);
    }
    /* A header length over the 100 MB cap in a file that is big enough. */
    size_t big = (size_t)EDM_ST_MAX_HEADER + 16;
    uint8_t *huge = calloc(1, big);
    if (huge) {
        uint64_t n = (uint64_t)EDM_ST_MAX_HEADER + 1;
        for (int k = 0; k < 8; k++) huge[k] = (uint8_t)(n >> (8 * k));
        huge[8] = '{';
        edm_st_file *f;
        edm_error err = {0};
        CHECK(edm_st_open_mem(huge, big, "huge", &f, &err) == EDM_EFORMAT &&
                  strstr(err.message, "100 MB"),
              "100 MB cap: %s", err.message);
        free(huge);
    }
    expect_bad("7 bytes", (const uint8_t *)"\x02\0\0\0\0\0\0", 7, "too short");
    expect_bad("empty", (const uint8_t *)"", 0, "too short");
}

static void test_bad_headers(void) {
#define T(name, rest) "\"" name "\":{" rest "}"
    /* offsets */
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]") "}", 8,
                      "past the data section");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]") "}", 8,
                      "end before begin");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]") "}", 8,
                      "'w': data_offsets span 8 bytes but F32 shape needs 12");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}",
                      12, "unused bytes");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
                      T("v", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}",
                      12, "overlap");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
                      T("v", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "}",
                      8, "overlap");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") ","
                      T("v", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]") "}",
                      24, "'v': 8 unused bytes");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]") "}", 8,
                      "'w': data_offsets is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]") "}", 4,
                      "data_offsets is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]") "}", 4,
                      "data_offsets is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4]") "}", 4,
                      "data_offsets is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"") "}", 4,
                      "data_offsets is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],"
                                 "\"data_offsets\":[0,18446744073709551620]") "}",
                      4, "JSON");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],"
                                 "\"data_offsets\":[9223372036854775807,9223372036854775807]") "}",
                      4, "past the data section");
    /* dtype */
    expect_bad_header("{" T("w", "\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]") "}", 8,
                      "'w': dtype 'F64' is not F32, F16 or BF16");
    expect_bad_header("{" T("w", "\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
                      "dtype 'f32'");
    expect_bad_header("{" T("w", "\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]") "}", 8,
                      "dtype 'I64'");
    expect_bad_header("{" T("w", "\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
                      "dtype is not a string");
    /* shape */
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]") "}", 4,
                      "'w': shape[0] is not a non-negative integer");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]") "}", 4,
                      "shape[0]");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1,\"2\"],\"data_offsets\":[0,8]") "}",
                      8, "shape[1]");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]") "}", 16,
                      "shape is not an array");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                                 "\"data_offsets\":[0,4]") "}",
                      4, "9 dimensions");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                                 "\"data_offsets\":[0,0]") "}",
                      0, "'w': the element count overflows");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[4611686018427387904],"
                                 "\"data_offsets\":[0,0]") "}",
                      0, "byte size overflows");
    expect_bad_header("{" T("w", "\"dtype\":\"F16\",\"shape\":[4294967296,0,4294967296],"
                                 "\"data_offsets\":[0,0]") "}",
                      0, "overflows");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[65536,65536,65536],"
                                 "\"data_offsets\":[0,0]") "}",
                      0, "span 0 bytes");
    /* entry structure */
    expect_bad_header("{\"w\":[1,2]}", 0, "'w': entry is not a JSON object");
    expect_bad_header("{\"w\":null}", 0, "entry is not");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1]") "}", 4,
                      "missing field 'data_offsets'");
    expect_bad_header("{" T("w", "\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
                      "missing field 'dtype'");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                                 "\"extra\":1") "}",
                      4, "unknown field 'extra'");
    /* metadata */
    expect_bad_header("{\"__metadata__\":{\"a\":\"x\",\"n\":3}}", 0,
                      "__metadata__ value of 'n' is not a string");
    expect_bad_header("{\"__metadata__\":{\"n\":null}}", 0, "'n' is not a string");
    expect_bad_header("{\"__metadata__\":{\"n\":{\"x\":\"y\"}}}", 0, "not a string");
    expect_bad_header("{\"__metadata__\":[\"x\"]}", 0, "__metadata__ is not a JSON object");
    expect_bad_header("{\"__metadata__\":\"x\"}", 0, "__metadata__ is not");
    /* JSON-level */
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") ","
                      T("w", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}",
                      8, "duplicate");
    expect_bad_header("{" T("w", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
                                 "\"data_offsets\":[0,4]") "}",
                      4, "duplicate");
    expect_bad_header("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate");
    expect_bad_header("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate");
    expect_bad_header("[]", 0, "'{'");
    expect_bad_header(" {}", 0, "'{'");
    expect_bad_header("{} x", 0, "JSON");
    expect_bad_header("{}{}", 0, "JSON");
    expect_bad_header("{\"a\":", 0, "JSON");
    expect_bad_header("{\"\xff\":{}}", 0, "JSON");          /* invalid UTF-8 */
    expect_bad_header("{\"\xc0\xaf\":{}}", 0, "JSON");      /* overlong encoding */
    expect_bad_header("{\"\xed\xa0\x80\":{}}", 0, "JSON");  /* UTF-16 surrogate */
    expect_bad_header("{\"a\\u0000b\":{}}", 0, "JSON");     /* NUL in a name */
    expect_bad_header("{\"__metadata__\":{\"k\":\"a\\u0000\"}}", 0, "JSON");
    static uint8_t buf[64];
    memcpy(buf, "\x04\0\0\0\0\0\0\0{\0}\0", 12); /* raw NUL inside the header */
    expect_bad("raw NUL", buf, 12, "JSON");
    /* Messages name the tensor: long and odd names are quoted, never overflow. */
    char header[4096];
    char name[1100];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(header, sizeof header,
             "{\"%s\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", name);
    expect_bad_header(header, 8, "nnnnnnnn");
#undef T
}

/* Single-byte mutations of a good file: each must load or fail with EDM_EFORMAT. */
static void test_mutations(void) {
    static uint8_t good[4096], buf[4096];
    size_t len = good_file(good, sizeof good, 3);
    static const uint8_t vals[] = {0x00, 0x01, ' ', '"', ',', '-', '0', '9', ':', '[', ']',
                                   '{', '}', 'e', 0x7f, 0x80, 0xc3, 0xff};
    int loaded = 0, bad = 0;
    for (size_t i = 0; i < len; i++)
        for (size_t k = 0; k < sizeof vals; k++) {
            memcpy(buf, good, len);
            buf[i] = vals[k];
            edm_st_file *f;
            edm_error err;
            enum edm_status st = open_copy(buf, len, &f, &err);
            if (st == EDM_OK) {
                loaded++;
                /* whatever loaded must be readable end to end */
                for (int t = 0; t < edm_st_count(f); t++) {
                    const edm_st_tensor *tt = edm_st_at(f, t);
                    float *v = malloc((size_t)(tt->numel ? tt->numel : 1) * sizeof *v);
                    if (edm_st_read_f32(f, tt, v, (size_t)tt->numel, &err) != EDM_OK) bad++;
                    free(v);
                }
                edm_st_close(f);
            } else if (st != EDM_EFORMAT || f != NULL) {
                bad++;
            }
        }
    CHECK(bad == 0, "mutations: %d misbehaved", bad);
    CHECK(loaded > 0, "some mutations (data bytes, padding) still load: %d", loaded);
}

static void test_files(void) {
    edm_st_file *f = (edm_st_file *)1;
    edm_error err = {0};
    CHECK(edm_st_open("/nonexistent/m.safetensors", &f, &err) == EDM_EIO && f == NULL &&
              strstr(err.message, "m.safetensors"),
          "missing file: %s", err.message);
    CHECK(edm_st_open("/", &f, &err) == EDM_EIO, "directory: %s", err.message);
    char path[] = "/tmp/edm_test_st_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) return;
    static uint8_t buf[4096];
    size_t len = good_file(buf, sizeof buf, 2);
    CHECK(write(fd, buf, len) == (ssize_t)len, "write");
    close(fd);
    CHECK(edm_st_open(path, &f, &err) == EDM_OK && edm_st_count(f) == 4, "open file: %s",
          err.message);
    edm_st_close(f);
    /* Truncated on disk: the message names the path. */
    CHECK(truncate(path, (off_t)len - 1) == 0, "truncate");
    CHECK(edm_st_open(path, &f, &err) == EDM_EFORMAT && strstr(err.message, path) && !f,
          "truncated file: %s", err.message);
    unlink(path);
}

/* FIPS 180-2 appendix B vectors, and lengths around the padding edges (55, 56, 63, 64 bytes:
 * one tail block or two) against digests from Python's hashlib. */
static void test_sha256(void) {
    static const struct {
        const char *msg;
        size_t repeat;
        const char *hex;
    } cases[] = {
        {"", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
        {"a", 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
        {"a", 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
        {"a", 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
        {"a", 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = strlen(cases[i].msg), len = n * cases[i].repeat;
        char *buf = malloc(len + 1), hex[65];
        for (size_t k = 0; k < cases[i].repeat; k++) memcpy(buf + k * n, cases[i].msg, n);
        edm_sha256_hex(buf, len, hex);
        CHECK(strcmp(hex, cases[i].hex) == 0, "sha256 of %zu bytes: %s, want %s", len, hex,
              cases[i].hex);
        free(buf);
    }
}

int main(void) {
    test_sha256();
    test_good();
    test_f16_exhaustive();
    test_lengths();
    test_bad_headers();
    test_mutations();
    test_files();
    return check_finish();
}
