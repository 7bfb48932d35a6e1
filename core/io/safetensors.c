/*
 * safetensors.c - reader and validator of safetensors model files (spec section 0).
 *
 * Layout: u64 little-endian N | N bytes of UTF-8 JSON (may be padded with spaces) | data.
 * The header maps names to {"dtype", "shape", "data_offsets": [begin, end]} with offsets
 * relative to the data section, plus an optional "__metadata__" object of strings.
 *
 * The header is untrusted; we validate everything once at open so no later access can go
 * out of bounds:
 *  - N <= file size - 8 and N <= 100 MB (the official cap), the header starts with '{';
 *  - the JSON is parsed by jansson with JSON_REJECT_DUPLICATES (it also checks UTF-8 and
 *    rejects NUL); the root is an object;
 *  - each entry has exactly the keys dtype (F32/F16/BF16: what edm-safetensors/1 allows),
 *    shape (<= 8 non-negative integers), data_offsets (two non-negative integers,
 *    begin <= end); element and byte counts are computed with overflow checks and
 *    end - begin must equal numel * element size;
 *  - sorted by offset, the tensors must tile the data section exactly as the official
 *    library requires: the first begins at 0, each begins where the previous ends (a smaller
 *    begin is an overlap, a larger one a hole), the last ends at the end of the file;
 *  - "__metadata__", if present, is an object whose values are all strings.
 * Every failure is EDM_EFORMAT with a message naming the file, the tensor and the problem.
 *
 * Order: JSON object order carries no meaning in the format, so "file order" is the order of
 * the data (ascending begin; zero-size tensors tie and keep header order). A second index
 * sorted by name makes edm_st_find O(log n).
 * Ownership: the file owns one buffer (the whole file), the tensor table, the name and
 * metadata strings (copied out of the JSON, which is freed after validation).
 */
#include "safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "status.h"

struct st_name {
    const char *name; /* the tensor's own string */
    int index;        /* into tensors */
};

struct edm_st_file {
    uint8_t *buf;        /* the whole file */
    size_t len;
    size_t data_start;   /* 8 + N */
    int count;
    edm_st_tensor *tensors; /* file order */
    struct st_name *by_name; /* sorted by name */
    int n_meta;
    char **meta_keys, **meta_values;
};

const char *edm_st_dtype_name(enum edm_dtype t) {
    switch (t) {
    case EDM_F32: return "F32";
    case EDM_F16: return "F16";
    case EDM_BF16: return "BF16";
    }
    return "?";
}

static size_t st_dtype_size(enum edm_dtype t) {
    return t == EDM_F32 ? 4 : 2;
}

static char *st_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

void edm_st_close(edm_st_file *f) {
    if (!f) return;
    if (f->tensors)
        for (int i = 0; i < f->count; i++) free((char *)f->tensors[i].name);
    for (int i = 0; i < f->n_meta; i++) {
        if (f->meta_keys) free(f->meta_keys[i]);
        if (f->meta_values) free(f->meta_values[i]);
    }
    free(f->meta_keys);
    free(f->meta_values);
    free(f->tensors);
    free(f->by_name);
    free(f->buf);
    free(f);
}

/* ---- validation of one entry --------------------------------------------------------------- */

/* A JSON integer >= 0 (jansson has already refused values outside int64). */
static int st_json_uint(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return 0;
    *out = (uint64_t)json_integer_value(v);
    return 1;
}

static enum edm_status st_parse_entry(const char *what, const char *name, json_t *v,
                                      size_t data_len, edm_st_tensor *t, edm_error *err) {
    if (!json_is_object(v))
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': entry is not a JSON object",
                             what, name);
    json_t *dtype = NULL, *shape = NULL, *offsets = NULL;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!strcmp(key, "dtype")) dtype = val;
        else if (!strcmp(key, "shape")) shape = val;
        else if (!strcmp(key, "data_offsets")) offsets = val;
        else
            return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': unknown field '%s'", what,
                                 name, key);
    }
    if (!dtype || !shape || !offsets)
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': missing field '%s'", what, name,
                             !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!json_is_string(dtype))
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': dtype is not a string", what,
                             name);
    const char *ds = json_string_value(dtype);
    if (!strcmp(ds, "F32")) t->dtype = EDM_F32;
    else if (!strcmp(ds, "F16")) t->dtype = EDM_F16;
    else if (!strcmp(ds, "BF16")) t->dtype = EDM_BF16;
    else
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: tensor '%s': dtype '%.32s' is not F32, F16 or BF16", what, name,
                             ds);

    if (!json_is_array(shape))
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': shape is not an array", what,
                             name);
    size_t nd = json_array_size(shape);
    if (nd > EDM_ST_MAX_DIMS)
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': %zu dimensions (at most %d)",
                             what, name, nd, EDM_ST_MAX_DIMS);
    t->ndim = (int)nd;
    /* numel, with a zero dimension making it 0; the non-zero dimensions must still multiply
     * without overflow so that no later stride computation can overflow either. */
    uint64_t nonzero = 1;
    int empty = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (!st_json_uint(json_array_get(shape, i), &d))
            return edm_error_set(err, EDM_EFORMAT,
                                 "%s: tensor '%s': shape[%zu] is not a non-negative integer",
                                 what, name, i);
        t->shape[i] = (int64_t)d;
        if (d == 0) {
            empty = 1;
            continue;
        }
        if (nonzero > (uint64_t)INT64_MAX / d)
            return edm_error_set(err, EDM_EFORMAT,
                                 "%s: tensor '%s': the element count overflows", what, name);
        nonzero *= d;
    }
    size_t esize = st_dtype_size(t->dtype);
    if (nonzero > (uint64_t)INT64_MAX / esize)
        return edm_error_set(err, EDM_EFORMAT, "%s: tensor '%s': the byte size overflows", what,
                             name);
    t->numel = empty ? 0 : (int64_t)nonzero;
    uint64_t bytes = (uint64_t)t->numel * esize;

    if (!json_is_array(offsets) || json_array_size(offsets) != 2 ||
        !st_json_uint(json_array_get(offsets, 0), &t->begin) ||
        !st_json_uint(json_array_get(offsets, 1), &t->end))
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: tensor '%s': data_offsets is not [begin, end] of non-negative "
                             "integers",
                             what, name);
    if (t->begin > t->end)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] end before begin", what,
                             name, (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end > data_len)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: tensor '%s': data_offsets end %llu is past the data section "
                             "(%zu bytes)",
                             what, name, (unsigned long long)t->end, data_len);
    if (t->end - t->begin != bytes)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: tensor '%s': data_offsets span %llu bytes but %s %s needs %llu",
                             what, name, (unsigned long long)(t->end - t->begin), ds,
                             nd ? "shape" : "scalar", (unsigned long long)bytes);
    return EDM_OK;
}

/* ---- sorting ------------------------------------------------------------------------------ */

static int st_cmp_tensor(const void *a, const void *b) {
    const edm_st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int st_cmp_name(const void *a, const void *b) {
    return strcmp(((const struct st_name *)a)->name, ((const struct st_name *)b)->name);
}

/* ---- open ----------------------------------------------------------------------------------- */

/* Takes ownership of buf (malloc'd, len bytes) in every case. */
static enum edm_status st_parse(uint8_t *buf, size_t len, const char *what, edm_st_file **out,
                                edm_error *err) {
    enum edm_status st = EDM_OK;
    json_t *root = NULL;
    edm_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        free(buf);
        return edm_error_set(err, EDM_ENOMEM, "%s: out of memory", what);
    }
    f->buf = buf;
    f->len = len;

    if (len < 8) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "%s: %zu bytes is too short for a safetensors file (8-byte header "
                           "length)",
                           what, len);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
    if (n > EDM_ST_MAX_HEADER || n > len - 8) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "%s: header length %llu exceeds the %s (%zu bytes)", what,
                           (unsigned long long)n, n > len - 8 ? "file" : "100 MB limit",
                           n > len - 8 ? len - 8 : (size_t)EDM_ST_MAX_HEADER);
        goto fail;
    }
    if (n < 2 || buf[8] != '{') {
        st = edm_error_set(err, EDM_EFORMAT, "%s: header does not start with '{'", what);
        goto fail;
    }
    f->data_start = 8 + (size_t)n;
    size_t data_len = len - f->data_start;

    json_error_t jerr;
    root = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "%s: header is not valid JSON: %s (line %d, column %d)", what,
                           jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = edm_error_set(err, EDM_EFORMAT, "%s: header is not a JSON object", what);
        goto fail;
    }

    json_t *meta = json_object_get(root, "__metadata__");
    size_t n_tensors = json_object_size(root) - (meta ? 1 : 0);
    if (n_tensors > (size_t)INT32_MAX / 2) {
        st = edm_error_set(err, EDM_EFORMAT, "%s: too many tensors", what);
        goto fail;
    }
    if (meta) {
        if (!json_is_object(meta)) {
            st = edm_error_set(err, EDM_EFORMAT, "%s: __metadata__ is not a JSON object", what);
            goto fail;
        }
        size_t nm = json_object_size(meta);
        f->meta_keys = calloc(nm ? nm : 1, sizeof *f->meta_keys);
        f->meta_values = calloc(nm ? nm : 1, sizeof *f->meta_values);
        if (!f->meta_keys || !f->meta_values) goto oom;
        const char *key;
        json_t *val;
        json_object_foreach(meta, key, val) {
            if (!json_is_string(val)) {
                st = edm_error_set(err, EDM_EFORMAT,
                                   "%s: __metadata__ value of '%s' is not a string", what, key);
                goto fail;
            }
            f->meta_keys[f->n_meta] = st_strdup(key);
            f->meta_values[f->n_meta] = st_strdup(json_string_value(val));
            f->n_meta++; /* counted before the check so close frees a half-made pair */
            if (!f->meta_keys[f->n_meta - 1] || !f->meta_values[f->n_meta - 1]) goto oom;
        }
    }

    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    f->by_name = calloc(n_tensors ? n_tensors : 1, sizeof *f->by_name);
    if (!f->tensors || !f->by_name) goto oom;
    {
        const char *key;
        json_t *val;
        json_object_foreach(root, key, val) {
            if (val == meta) continue;
            edm_st_tensor *t = &f->tensors[f->count];
            st = st_parse_entry(what, key, val, data_len, t, err);
            if (st) goto fail;
            t->name = st_strdup(key);
            if (!t->name) goto oom;
            f->count++;
        }
    }

    /* File order. Equal (begin, end) pairs are zero-size tensors (a non-empty tie is an
     * overlap, reported below); their relative order does not matter to any reader. */
    qsort(f->tensors, (size_t)f->count, sizeof *f->tensors, st_cmp_tensor);
    uint64_t at = 0;
    for (int i = 0; i < f->count; i++) {
        const edm_st_tensor *t = &f->tensors[i];
        if (t->begin < at) {
            st = edm_error_set(err, EDM_EFORMAT,
                               "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                               what, t->name, (unsigned long long)t->begin,
                               (unsigned long long)t->end, f->tensors[i - 1].name);
            goto fail;
        }
        if (t->begin > at) {
            st = edm_error_set(err, EDM_EFORMAT,
                               "%s: tensor '%s': %llu unused bytes before its data_offsets "
                               "[%llu, %llu]",
                               what, t->name, (unsigned long long)(t->begin - at),
                               (unsigned long long)t->begin, (unsigned long long)t->end);
            goto fail;
        }
        at = t->end;
    }
    if (at != data_len) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "%s: %llu bytes after the last tensor's data (the data section is "
                           "%zu bytes, the tensors cover %llu)",
                           what, (unsigned long long)(data_len - at), data_len,
                           (unsigned long long)at);
        goto fail;
    }

    for (int i = 0; i < f->count; i++) {
        f->by_name[i].name = f->tensors[i].name;
        f->by_name[i].index = i;
    }
    qsort(f->by_name, (size_t)f->count, sizeof *f->by_name, st_cmp_name);

    json_decref(root);
    *out = f;
    return EDM_OK;
oom:
    st = edm_error_set(err, EDM_ENOMEM, "%s: out of memory", what);
fail:
    json_decref(root);
    edm_st_close(f);
    return st;
}

enum edm_status edm_st_open_mem(const void *buf, size_t len, const char *what, edm_st_file **out,
                                edm_error *err) {
    if (!what) what = "safetensors";
    if (!out) return edm_error_set(err, EDM_EINVAL, "%s: no output pointer", what);
    *out = NULL;
    if (!buf && len) return edm_error_set(err, EDM_EINVAL, "%s: no input bytes", what);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return edm_error_set(err, EDM_ENOMEM, "%s: out of memory (%zu bytes)", what, len);
    if (len) memcpy(copy, buf, len);
    return st_parse(copy, len, what, out, err);
}

enum edm_status edm_st_open(const char *path, edm_st_file **out, edm_error *err) {
    if (!out) return edm_error_set(err, EDM_EINVAL, "safetensors open: no output pointer");
    *out = NULL;
    if (!path) return edm_error_set(err, EDM_EINVAL, "safetensors open: no path");
    enum edm_status st;
    uint8_t *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return edm_error_set(err, EDM_EIO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0) {
        st = edm_error_set(err, EDM_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = edm_error_set(err, EDM_EIO, "%s: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX - 1) {
        st = edm_error_set(err, EDM_ENOMEM, "%s: file too large", path);
        goto fail;
    }
    size_t len = (size_t)sb.st_size;
    buf = malloc(len ? len : 1);
    if (!buf) {
        st = edm_error_set(err, EDM_ENOMEM, "%s: out of memory reading %zu bytes", path, len);
        goto fail;
    }
    if (fread(buf, 1, len, fp) != len) {
        st = edm_error_set(err, EDM_EIO, "%s: read failed%s%s", path, ferror(fp) ? ": " : "",
                           ferror(fp) ? strerror(errno) : " (file shrank)");
        goto fail;
    }
    fclose(fp);
    return st_parse(buf, len, path, out, err); /* takes buf */
fail:
    free(buf);
    fclose(fp);
    return st;
}

/* ---- accessors ---------------------------------------------------------------------------- */

int edm_st_count(const edm_st_file *f) {
    EDM_ASSERT(f);
    return f->count;
}

const edm_st_tensor *edm_st_at(const edm_st_file *f, int i) {
    EDM_ASSERT(f && i >= 0 && i < f->count);
    return &f->tensors[i];
}

const edm_st_tensor *edm_st_find(const edm_st_file *f, const char *name) {
    EDM_ASSERT(f && name);
    struct st_name key = {name, -1};
    const struct st_name *hit =
        bsearch(&key, f->by_name, (size_t)f->count, sizeof *f->by_name, st_cmp_name);
    return hit ? &f->tensors[hit->index] : NULL;
}

const void *edm_st_data(const edm_st_file *f, const edm_st_tensor *t) {
    EDM_ASSERT(f && t && t >= f->tensors && t < f->tensors + f->count);
    return f->buf + f->data_start + t->begin;
}

/* Constant-folded by the compiler; keeps the byte-order choice out of the preprocessor. */
static int st_host_little_endian(void) {
    const uint32_t one = 1;
    unsigned char first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* IEEE binary16 -> binary32, exact for every input (subnormals, inf, NaN payloads). */
static float st_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | man << 13; /* inf / NaN */
    } else if (exp != 0) {
        u = sign | (exp + 112) << 23 | man << 13; /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign; /* +-0 */
    } else {
        /* subnormal: value = man * 2^-24; normalise the mantissa */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        u = sign | (uint32_t)(112 - e) << 23 | (man & 0x3ff) << 13;
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

enum edm_status edm_st_read_f32(const edm_st_file *f, const edm_st_tensor *t, float *dst,
                                size_t dst_count, edm_error *err) {
    EDM_ASSERT(f && t && t >= f->tensors && t < f->tensors + f->count);
    if ((uint64_t)dst_count != (uint64_t)t->numel)
        return edm_error_set(err, EDM_EINVAL,
                             "tensor '%s': destination holds %zu values but the tensor has %lld",
                             t->name, dst_count, (long long)t->numel);
    if (t->numel && !dst)
        return edm_error_set(err, EDM_EINVAL, "tensor '%s': no destination", t->name);
    const uint8_t *b = f->buf + f->data_start + t->begin;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case EDM_F32:
        if (st_host_little_endian()) {
            if (n) memcpy(dst, b, n * 4); /* the file's bytes are the host's floats */
            break;
        }
        for (size_t i = 0; i < n; i++, b += 4) {
            uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24;
            memcpy(&dst[i], &u, 4);
        }
        break;
    case EDM_F16:
        for (size_t i = 0; i < n; i++, b += 2) dst[i] = st_f16_to_f32((uint16_t)(b[0] | b[1] << 8));
        break;
    case EDM_BF16:
        for (size_t i = 0; i < n; i++, b += 2) {
            uint32_t u = ((uint32_t)b[0] | (uint32_t)b[1] << 8) << 16;
            memcpy(&dst[i], &u, 4);
        }
        break;
    }
    return EDM_OK;
}

const char *edm_st_metadata(const edm_st_file *f, const char *key) {
    EDM_ASSERT(f && key);
    for (int i = 0; i < f->n_meta; i++)
        if (!strcmp(f->meta_keys[i], key)) return f->meta_values[i];
    return NULL;
}

int edm_st_metadata_count(const edm_st_file *f) {
    EDM_ASSERT(f);
    return f->n_meta;
}

void edm_st_metadata_at(const edm_st_file *f, int i, const char **key, const char **value) {
    EDM_ASSERT(f && i >= 0 && i < f->n_meta);
    if (key) *key = f->meta_keys[i];
    if (value) *value = f->meta_values[i];
}

const void *edm_st_bytes(const edm_st_file *f, size_t *len) {
    EDM_ASSERT(f && len);
    *len = f->len;
    return f->buf;
}
