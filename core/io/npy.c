/*
 * npy.c - NPY arrays in and out (include/edm.h "NPY", npy.h; spec section 0).
 *
 * Format (numpy's lib/format.py): magic "\x93NUMPY", major, minor, a little-endian header
 * length (u16 for v1.0, u32 for v2.0/v3.0), then a Python dict literal
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and ending in '\n', then the raw C-order data.
 *
 * Reading: the file is untrusted. We read it whole, then parse the dict with a bounded
 * tokenizer (never past the header), require exactly the three keys, accept dtypes '<f4',
 * '<f8' and '|u1' (both converted to float: '|u1' is handy for image tests), reject Fortran
 * order, check every dimension and the element count for int64 and size_t overflow, and
 * require the data section to be exactly numel * itemsize bytes (truncated and padded files
 * both fail). Values are decoded byte by byte as little endian, so the host's byte order does
 * not matter. Writing always produces v1.0 '<f4' with the header padded to 64 bytes, as
 * numpy does, so numpy reads our files and we read numpy's.
 */
#include "npy.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

/* numpy refuses headers over 10000 bytes by default; allow more, but bounded. */
#define NPY_MAX_HEADER (1u << 20)

enum npy_dtype { NPY_F4, NPY_F8, NPY_U1 };

typedef struct npy_header {
    enum npy_dtype dtype;
    int fortran_order;
    int ndim;
    int64_t shape[EDM_NPY_MAX_DIMS];
    size_t data_offset;
} npy_header;

/* A bounded cursor over the header text. */
typedef struct npy_cursor {
    const char *p, *end;
} npy_cursor;

static void npy_skip_space(npy_cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int npy_eat(npy_cursor *c, char ch) {
    npy_skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted Python string without escapes (numpy's keys and descrs have none). */
static int npy_string(npy_cursor *c, char *out, size_t cap) {
    npy_skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return 0;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || *c->p == '\n' || n + 1 >= cap) return 0;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end) return 0;
    c->p++;
    out[n] = '\0';
    return 1;
}

static int npy_word(npy_cursor *c, const char *w) {
    npy_skip_space(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0) return 0;
    /* a whole word: "Truex" is not True */
    if ((size_t)(c->end - c->p) > n) {
        char nx = c->p[n];
        if ((nx >= 'a' && nx <= 'z') || (nx >= 'A' && nx <= 'Z') || (nx >= '0' && nx <= '9') ||
            nx == '_')
            return 0;
    }
    c->p += n;
    return 1;
}

/* A non-negative decimal integer that fits int64. Returns 1, 0 (not a number), -1 (too big). */
static int npy_int(npy_cursor *c, int64_t *v) {
    npy_skip_space(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
    int64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int d = *c->p++ - '0';
        if (x > (INT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

static enum edm_status npy_parse_shape(npy_cursor *c, npy_header *h, const char *what,
                                       edm_error *err) {
    if (!npy_eat(c, '('))
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY 'shape' is not a tuple", what);
    h->ndim = 0;
    if (npy_eat(c, ')')) return EDM_OK; /* () : a scalar */
    for (;;) {
        int64_t v;
        int r = npy_int(c, &v);
        if (r == 0)
            return edm_error_set(err, EDM_EFORMAT,
                                 "%s: NPY 'shape' holds something other than a non-negative "
                                 "integer",
                                 what);
        if (r < 0)
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY dimension %d overflows int64", what,
                                 h->ndim);
        if (h->ndim == EDM_NPY_MAX_DIMS)
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY array has more than %d dimensions",
                                 what, EDM_NPY_MAX_DIMS);
        h->shape[h->ndim++] = v;
        int comma = npy_eat(c, ',');
        if (npy_eat(c, ')')) {
            /* Python needs the comma of a 1-tuple: "(3)" is the integer 3, not a tuple. */
            if (h->ndim == 1 && !comma)
                return edm_error_set(err, EDM_EFORMAT, "%s: NPY 'shape' (n) is not a tuple",
                                     what);
            return EDM_OK;
        }
        if (!comma)
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY 'shape' tuple is malformed", what);
    }
}

/* Parses magic, version, header length and the dict; buf holds the whole file. */
static enum edm_status npy_parse_header(const uint8_t *buf, size_t len, const char *what,
                                        npy_header *h, edm_error *err) {
    memset(h, 0, sizeof *h);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return edm_error_set(err, EDM_EFORMAT, "%s: not an NPY file (bad magic)", what);
    unsigned major = buf[6], minor = buf[7];
    size_t pre, hlen;
    if (major == 1 && minor == 0) {
        pre = 10;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12)
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY file truncated in its preamble",
                                 what);
        pre = 12;
        uint32_t l = (uint32_t)buf[8] | (uint32_t)buf[9] << 8 | (uint32_t)buf[10] << 16 |
                     (uint32_t)buf[11] << 24;
        if (l > NPY_MAX_HEADER)
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY header length %u exceeds %u", what,
                                 (unsigned)l, NPY_MAX_HEADER);
        hlen = l;
    } else {
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY version %u.%u is not 1.0, 2.0 or 3.0",
                             what, major, minor);
    }
    if (hlen > len - pre)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: NPY header length %zu exceeds the file (%zu bytes)", what, hlen,
                             len);
    h->data_offset = pre + hlen;

    const char *text = (const char *)buf + pre;
    for (size_t i = 0; i < hlen; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == 0 || ch >= 0x80)
            return edm_error_set(err, EDM_EFORMAT,
                                 "%s: NPY header has a non-ASCII or NUL byte at %zu", what, i);
    }
    npy_cursor c = {text, text + hlen};
    if (!npy_eat(&c, '{'))
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY header is not a dict", what);
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    for (;;) {
        if (npy_eat(&c, '}')) break;
        char key[32], val[32];
        if (!npy_string(&c, key, sizeof key) || !npy_eat(&c, ':'))
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY header dict is malformed", what);
        if (!strcmp(key, "descr")) {
            if (have_descr++)
                return edm_error_set(err, EDM_EFORMAT, "%s: NPY header repeats 'descr'", what);
            if (!npy_string(&c, val, sizeof val))
                return edm_error_set(err, EDM_EFORMAT,
                                     "%s: NPY 'descr' is not a simple dtype string", what);
            if (!strcmp(val, "<f4")) h->dtype = NPY_F4;
            else if (!strcmp(val, "<f8")) h->dtype = NPY_F8;
            else if (!strcmp(val, "|u1") || !strcmp(val, "<u1") || !strcmp(val, "u1"))
                h->dtype = NPY_U1;
            else
                return edm_error_set(err, EDM_EFORMAT,
                                     "%s: NPY dtype '%s' is not supported ('<f4', '<f8', '|u1')",
                                     what, val);
        } else if (!strcmp(key, "fortran_order")) {
            if (have_fortran++)
                return edm_error_set(err, EDM_EFORMAT, "%s: NPY header repeats 'fortran_order'",
                                     what);
            if (npy_word(&c, "False")) h->fortran_order = 0;
            else if (npy_word(&c, "True")) h->fortran_order = 1;
            else
                return edm_error_set(err, EDM_EFORMAT,
                                     "%s: NPY 'fortran_order' is not True or False", what);
        } else if (!strcmp(key, "shape")) {
            if (have_shape++)
                return edm_error_set(err, EDM_EFORMAT, "%s: NPY header repeats 'shape'", what);
            enum edm_status st = npy_parse_shape(&c, h, what, err);
            if (st) return st;
        } else {
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY header has an unknown key '%s'",
                                 what, key);
        }
        if (!npy_eat(&c, ',')) {
            if (npy_eat(&c, '}')) break;
            return edm_error_set(err, EDM_EFORMAT, "%s: NPY header dict is malformed", what);
        }
    }
    npy_skip_space(&c);
    if (c.p != c.end)
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY header has text after the dict", what);
    if (!have_descr || !have_fortran || !have_shape)
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY header lacks '%s'", what,
                             !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    if (h->fortran_order)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: NPY array is in Fortran order (only C order is supported)",
                             what);
    return EDM_OK;
}

static size_t npy_itemsize(enum npy_dtype t) {
    return t == NPY_F8 ? 8 : t == NPY_F4 ? 4 : 1;
}

void edm_npy_clear(edm_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int64_t edm_npy_numel(const edm_npy *a) {
    int64_t n = 1;
    for (int i = 0; i < a->ndim; i++) n *= a->shape[i];
    return n;
}

/* numel of a shape; -1 when it does not fit int64 (nor, on this host, a size_t of bytes at
 * `itemsize` per element). A zero dimension makes the array empty, but the other dimensions
 * must still multiply without overflow: code computing strides from them must be safe. */
static int64_t npy_shape_numel(int ndim, const int64_t *shape, size_t itemsize) {
    int64_t n = 1, nonzero = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] == 0) {
            n = 0;
            continue;
        }
        if (nonzero > INT64_MAX / shape[i]) return -1;
        nonzero *= shape[i];
    }
    if ((uint64_t)nonzero > SIZE_MAX / itemsize || (uint64_t)nonzero > SIZE_MAX / sizeof(float))
        return -1;
    return n ? nonzero : 0;
}

enum edm_status edm_npy_decode(const void *bufv, size_t len, const char *what, edm_npy *out,
                               edm_error *err) {
    const uint8_t *buf = bufv;
    if (!what) what = "npy";
    if (!out) return edm_error_set(err, EDM_EINVAL, "%s: no output array", what);
    memset(out, 0, sizeof *out);
    if (!buf && len) return edm_error_set(err, EDM_EINVAL, "%s: no input bytes", what);
    npy_header h;
    enum edm_status st = npy_parse_header(buf, len, what, &h, err);
    if (st) return st;
    size_t isz = npy_itemsize(h.dtype);
    int64_t numel = npy_shape_numel(h.ndim, h.shape, isz);
    if (numel < 0)
        return edm_error_set(err, EDM_EFORMAT, "%s: NPY shape's element count overflows", what);
    size_t need = (size_t)numel * isz, have = len - h.data_offset;
    if (have != need)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: NPY data is %zu bytes but the shape needs %zu (%s)", what, have,
                             need, have < need ? "truncated" : "trailing bytes");
    /* Never zero bytes, so a non-NULL data pointer always means success. */
    float *data = malloc(numel ? (size_t)numel * sizeof(float) : sizeof(float));
    if (!data) return edm_error_set(err, EDM_ENOMEM, "%s: out of memory for %lld elements", what,
                                    (long long)numel);
    const uint8_t *src = buf + h.data_offset;
    for (size_t i = 0; i < (size_t)numel; i++) {
        const uint8_t *b = src + i * isz;
        if (h.dtype == NPY_F4) {
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            memcpy(&data[i], &u, 4);
        } else if (h.dtype == NPY_F8) {
            uint64_t u = 0;
            for (int k = 7; k >= 0; k--) u = u << 8 | b[k];
            double d;
            memcpy(&d, &u, 8);
            data[i] = (float)d;
        } else {
            data[i] = (float)b[0];
        }
    }
    out->ndim = h.ndim;
    memcpy(out->shape, h.shape, sizeof h.shape);
    out->data = data;
    return EDM_OK;
}

enum edm_status edm_npy_read(const char *path, edm_npy *out, edm_error *err) {
    if (!out) return edm_error_set(err, EDM_EINVAL, "npy read: no output array");
    memset(out, 0, sizeof *out);
    if (!path) return edm_error_set(err, EDM_EINVAL, "npy read: no path");
    enum edm_status st;
    uint8_t *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return edm_error_set(err, EDM_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        st = edm_error_set(err, EDM_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = edm_error_set(err, EDM_EIO, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = edm_error_set(err, EDM_ENOMEM, "%s: file too large", path);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        st = edm_error_set(err, EDM_ENOMEM, "%s: out of memory reading %zu bytes", path, size);
        goto fail;
    }
    if (fread(buf, 1, size, f) != size) {
        st = edm_error_set(err, EDM_EIO, "%s: read failed%s%s", path, ferror(f) ? ": " : "",
                           ferror(f) ? strerror(errno) : " (file shrank)");
        goto fail;
    }
    st = edm_npy_decode(buf, size, path, out, err);
fail:
    free(buf);
    fclose(f);
    return st;
}

enum edm_status edm_npy_encode(const float *data, int ndim, const int64_t *shape, uint8_t **bufp,
                               size_t *lenp, edm_error *err) {
    if (!bufp || !lenp) return edm_error_set(err, EDM_EINVAL, "npy encode: no output pointer");
    *bufp = NULL;
    *lenp = 0;
    if (ndim < 0 || ndim > EDM_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return edm_error_set(err, EDM_EINVAL, "npy encode: %d dimensions (0..%d allowed)", ndim,
                             EDM_NPY_MAX_DIMS);
    int64_t numel = npy_shape_numel(ndim, shape, 4);
    if (numel < 0)
        return edm_error_set(err, EDM_EINVAL,
                             "npy encode: a dimension is negative or the size overflows");
    if (numel > 0 && !data) return edm_error_set(err, EDM_EINVAL, "npy encode: no data");

    /* The dict exactly as numpy writes it, then spaces and '\n' up to a multiple of 64. */
    char dict[64 + EDM_NPY_MAX_DIMS * 24];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int i = 0; i < ndim; i++)
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%lld", i ? ", " : "",
                      (long long)shape[i]);
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", ndim == 1 ? "," : "");
    size_t hlen = (size_t)n + 1; /* + '\n' */
    hlen += (64 - (10 + hlen) % 64) % 64;
    size_t bytes = (size_t)numel * 4;
    if (bytes > SIZE_MAX - 10 - hlen)
        return edm_error_set(err, EDM_EINVAL, "npy encode: array too large");
    size_t len = 10 + hlen + bytes;
    uint8_t *buf = malloc(len);
    if (!buf) return edm_error_set(err, EDM_ENOMEM, "npy encode: out of memory (%zu bytes)", len);
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)(hlen & 0xff);
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, (size_t)n);
    memset(buf + 10 + n, ' ', hlen - (size_t)n - 1);
    buf[10 + hlen - 1] = '\n';
    uint8_t *dst = buf + 10 + hlen;
    for (size_t i = 0; i < (size_t)numel; i++) {
        uint32_t u;
        memcpy(&u, &data[i], 4);
        dst[4 * i + 0] = (uint8_t)u;
        dst[4 * i + 1] = (uint8_t)(u >> 8);
        dst[4 * i + 2] = (uint8_t)(u >> 16);
        dst[4 * i + 3] = (uint8_t)(u >> 24);
    }
    *bufp = buf;
    *lenp = len;
    return EDM_OK;
}

enum edm_status edm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape,
                              edm_error *err) {
    if (!path) return edm_error_set(err, EDM_EINVAL, "npy write: no path");
    uint8_t *buf = NULL;
    size_t len = 0;
    enum edm_status st = edm_npy_encode(data, ndim, shape, &buf, &len, err);
    if (st) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        st = edm_error_set(err, EDM_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    size_t wrote = fwrite(buf, 1, len, f);
    int werr = errno;
    if (fclose(f) != 0 && wrote == len) {
        werr = errno;
        wrote = 0;
    }
    if (wrote != len) {
        remove(path); /* no half-written array left behind */
        st = edm_error_set(err, EDM_EIO, "%s: write failed: %s", path, strerror(werr));
        goto fail;
    }
fail:
    free(buf);
    return st;
}
