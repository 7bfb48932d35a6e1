/*
 * test_npy.c - NPY reading and writing (core/io/npy.c): round trips, files written by numpy
 * (committed under tests/data/npy/, made by gen.py there), byte-identical output to np.save
 * when /usr/bin/python3 has numpy, and truncated / hostile headers, all rejected cleanly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "edm.h"
#include "io/npy.h"

#define DATA_DIR "tests/data/npy/"

static char tmpdir[256];

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* ---- round trips ------------------------------------------------------------------------ */

static void round_trip(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    float *data = malloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) data[i] = (float)i * 0.37f - 3.0f;
    if (n > 2) data[1] = -0.0f, data[2] = INFINITY;
    char path[300];
    tmp_path(path, sizeof path, "rt.npy");
    edm_error err = {0};
    enum edm_status st = edm_npy_write(path, data, ndim, shape, &err);
    CHECK(st == EDM_OK, "write ndim %d: %s", ndim, err.message);
    edm_npy a;
    st = edm_npy_read(path, &a, &err);
    CHECK(st == EDM_OK, "read back ndim %d: %s", ndim, err.message);
    if (st == EDM_OK) {
        CHECK(a.ndim == ndim, "ndim %d want %d", a.ndim, ndim);
        CHECK(ndim == 0 || memcmp(a.shape, shape, (size_t)ndim * sizeof *shape) == 0,
              "shape ndim %d", ndim);
        CHECK(edm_npy_numel(&a) == n, "numel %lld want %lld", (long long)edm_npy_numel(&a),
              (long long)n);
        CHECK(a.data != NULL, "data pointer non-NULL even when empty");
        CHECK(n == 0 || memcmp(a.data, data, (size_t)n * sizeof(float)) == 0, "values ndim %d",
              ndim);
        /* numpy aligns the data to 64 bytes; so do we. */
        FILE *f = fopen(path, "rb");
        unsigned char pre[10] = {0};
        CHECK(f && fread(pre, 1, 10, f) == 10, "reopen");
        if (f) fclose(f);
        CHECK((10 + (pre[8] | pre[9] << 8)) % 64 == 0, "header padded to 64");
    }
    edm_npy_clear(&a);
    CHECK(a.data == NULL && a.ndim == 0, "clear");
    free(data);
}

static void test_round_trips(void) {
    int64_t s1[] = {7}, s2[] = {2, 3}, s4[] = {2, 3, 4, 5}, s0[] = {0, 5},
            s8[] = {1, 2, 1, 2, 1, 2, 1, 3};
    round_trip(0, NULL);
    round_trip(1, s1);
    round_trip(2, s2);
    round_trip(4, s4);
    round_trip(2, s0);
    round_trip(8, s8);
    edm_npy_clear(NULL); /* no-op */
}

/* ---- numpy-made files ---------------------------------------------------------------------- */

static int have_data_dir(void) {
    return access(DATA_DIR "f4_2x3x4.npy", R_OK) == 0;
}

static void expect_file(const char *name, int ndim, const int64_t *shape, int kind) {
    char path[300];
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    edm_npy a;
    edm_error err = {0};
    enum edm_status st = edm_npy_read(path, &a, &err);
    CHECK(st == EDM_OK, "%s: %s", name, err.message);
    if (st != EDM_OK) return;
    CHECK(a.ndim == ndim, "%s: ndim %d want %d", name, a.ndim, ndim);
    int same = 1;
    for (int i = 0; i < ndim && i < a.ndim; i++) same &= a.shape[i] == shape[i];
    CHECK(same, "%s: shape", name);
    int64_t n = edm_npy_numel(&a);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        /* kind 0: ramp i*0.25-1; kind 1: u1 20*i; kind 2: the scalar 2.5 */
        float want = kind == 0 ? (float)i * 0.25f - 1.0f : kind == 1 ? 20.0f * (float)i : 2.5f;
        if (a.data[i] != want) ok = 0;
    }
    CHECK(ok, "%s: values", name);
    edm_npy_clear(&a);
}

static void expect_file_rejected(const char *name, const char *needle) {
    char path[300];
    snprintf(path, sizeof path, DATA_DIR "%s", name);
    edm_npy a;
    edm_error err = {0};
    enum edm_status st = edm_npy_read(path, &a, &err);
    CHECK(st == EDM_EFORMAT, "%s: status %d (%s)", name, st, err.message);
    CHECK(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", name, err.message,
          needle);
    CHECK(a.data == NULL, "%s: no data on failure", name);
}

static void test_numpy_files(void) {
    if (!have_data_dir()) {
        SKIP("%s not found (run from the repository root)", DATA_DIR);
        return;
    }
    int64_t s234[] = {2, 3, 4}, s5[] = {5}, s223[] = {2, 2, 3}, s03[] = {0, 3}, s32[] = {3, 2},
            s8[] = {1, 1, 1, 1, 1, 1, 1, 2};
    expect_file("f4_2x3x4.npy", 3, s234, 0);
    expect_file("f8_5.npy", 1, s5, 0);
    expect_file("u1_2x2x3.npy", 3, s223, 1);
    expect_file("f4_scalar.npy", 0, NULL, 2);
    expect_file("f4_0x3.npy", 2, s03, 0);
    expect_file("f4_1x1x1x1x1x1x1x2.npy", 8, s8, 0);
    expect_file("f4_v2_3x2.npy", 2, s32, 0);
    expect_file("f4_v3_3x2.npy", 2, s32, 0);
    expect_file_rejected("f4_fortran_2x3.npy", "Fortran");
    expect_file_rejected("f4_big_endian.npy", ">f4");
    expect_file_rejected("i8_3.npy", "<i8");
    expect_file_rejected("f2_3.npy", "<f2");
}

/* Our bytes equal np.save's for the same array (when numpy is at hand). */
static void test_numpy_identical(void) {
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        SKIP("no /usr/bin/python3 with numpy");
        return;
    }
    char ours[300], theirs[300], cmd[1024];
    tmp_path(ours, sizeof ours, "ours.npy");
    tmp_path(theirs, sizeof theirs, "theirs.npy");
    static const int64_t shapes[][4] = {{2, 3, 4, 0}, {5, 0, 0, 0}, {1, 3, 8, 8}};
    static const int ndims[] = {3, 1, 4};
    for (int c = 0; c < 3; c++) {
        int64_t n = 1;
        for (int i = 0; i < ndims[c]; i++) n *= shapes[c][i];
        float *v = malloc((size_t)n * sizeof *v);
        for (int64_t i = 0; i < n; i++) v[i] = (float)i * 0.25f - 1.0f;
        edm_npy_write(ours, v, ndims[c], shapes[c], NULL);
        free(v);
        char tuple[128] = "(";
        for (int i = 0; i < ndims[c]; i++)
            snprintf(tuple + strlen(tuple), sizeof tuple - strlen(tuple), "%lld,",
                     (long long)shapes[c][i]);
        strcat(tuple, ")");
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import numpy as np; "
                 "np.save(\"%s\", (np.arange(%lld)*0.25-1).astype(\"<f4\").reshape(%s))'",
                 theirs, (long long)n, tuple);
        int rc = system(cmd);
        CHECK(rc == 0, "numpy np.save (case %d)", c);
        FILE *a = fopen(ours, "rb"), *b = fopen(theirs, "rb");
        static unsigned char ba[8192], bb[8192];
        size_t na = a ? fread(ba, 1, sizeof ba, a) : 0, nb = b ? fread(bb, 1, sizeof bb, b) : 1;
        CHECK(na == nb && memcmp(ba, bb, na) == 0, "case %d: ours %zu bytes, numpy %zu, differ",
              c, na, nb);
        if (a) fclose(a);
        if (b) fclose(b);
        /* And numpy reads ours with the right shape and values. */
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 -c 'import numpy as np,sys; a=np.load(\"%s\"); "
                 "b=np.load(\"%s\"); sys.exit(0 if a.dtype==np.float32 and a.shape==b.shape "
                 "and (a==b).all() else 1)'",
                 ours, theirs);
        CHECK(system(cmd) == 0, "numpy loads ours (case %d)", c);
    }
}

/* ---- hostile input ------------------------------------------------------------------------ */

/* A v1.0 file with the given header dict text (padded to 64) and `data` bytes appended. */
static size_t make_npy(uint8_t *buf, size_t cap, const char *dict, const void *data,
                       size_t data_len) {
    size_t n = strlen(dict), hlen = n + 1;
    hlen += (64 - (10 + hlen) % 64) % 64;
    if (10 + hlen + data_len > cap) abort();
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)hlen;
    buf[9] = (uint8_t)(hlen >> 8);
    memcpy(buf + 10, dict, n);
    memset(buf + 10 + n, ' ', hlen - n - 1);
    buf[10 + hlen - 1] = '\n';
    if (data_len) memcpy(buf + 10 + hlen, data, data_len);
    return 10 + hlen + data_len;
}

static enum edm_status decode(const uint8_t *buf, size_t len, edm_error *err) {
    /* Copy to an exact-size heap block so ASan catches any read past the end. */
    uint8_t *copy = malloc(len ? len : 1);
    if (len) memcpy(copy, buf, len);
    edm_npy a;
    enum edm_status st = edm_npy_decode(copy, len, "test", &a, err);
    if (st == EDM_OK) CHECK(a.data != NULL, "data on success");
    else CHECK(a.data == NULL && a.ndim == 0, "cleared on failure");
    edm_npy_clear(&a);
    free(copy);
    return st;
}

static void expect_bad_dict(const char *dict, size_t data_len, const char *needle) {
    static uint8_t buf[4096];
    static uint8_t zeros[512];
    size_t len = make_npy(buf, sizeof buf, dict, zeros, data_len);
    edm_error err = {0};
    enum edm_status st = decode(buf, len, &err);
    CHECK(st == EDM_EFORMAT, "%s: status %d", dict, st);
    CHECK(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", dict, err.message,
          needle);
}

static void test_hostile_headers(void) {
    static uint8_t buf[4096];
    static uint8_t zeros[512];
    edm_error err;
    /* Sanity: the generator makes good files. */
    const char *good = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
    size_t len = make_npy(buf, sizeof buf, good, zeros, 8);
    CHECK(decode(buf, len, &err) == EDM_OK, "good file: %s", err.message);
    len = make_npy(buf, sizeof buf, "{\"shape\":(2,3),\"descr\":\"<f4\",\"fortran_order\":False}",
                   zeros, 24);
    CHECK(decode(buf, len, &err) == EDM_OK, "key order, double quotes, no spaces: %s",
          err.message);

    const char *F = "{'descr': '<f4', 'fortran_order': False, ";
    char d[512];
#define BAD(tail, data_len, needle)                                                            \
    do {                                                                                       \
        snprintf(d, sizeof d, "%s%s", F, tail);                                                \
        expect_bad_dict(d, data_len, needle);                                                  \
    } while (0)
    BAD("'shape': (2,), }", 7, "truncated");
    BAD("'shape': (2,), }", 9, "trailing");
    BAD("'shape': (3), }", 12, "not a tuple");
    BAD("'shape': 3, }", 12, "not a tuple");
    BAD("'shape': (-1,), }", 0, "non-negative");
    BAD("'shape': (2.0,), }", 8, "malformed");
    BAD("'shape': (2 3), }", 24, "malformed");
    BAD("'shape': (,), }", 0, "non-negative");
    BAD("'shape': (1,1,1,1,1,1,1,1,1), }", 4, "more than 8");
    BAD("'shape': (99999999999999999999,), }", 0, "overflows int64");
    BAD("'shape': (4294967296, 4294967296, 4), }", 0, "overflows");
    BAD("'shape': (9223372036854775807,), }", 0, "overflows");
    BAD("'shape': (4611686018427387904,), }", 0, "overflows"); /* 2^62 * 4 bytes = 2^64 */
    BAD("'shape': (2305843009213693952,), }", 0, "truncated");  /* 2^63 bytes: fits size_t */
    BAD("'shape': (4611686018427387904, 0, 4611686018427387904), }", 0, "overflows");
    BAD("'shape': (2,), 'extra': 1, }", 8, "unknown key");
    BAD("'shape': (2,), 'shape': (2,), }", 8, "repeats");
    BAD("'shape': (2,) }  x", 8, "text after");
    BAD("'shape': (2,), } }", 8, "text after");
    BAD("'shape': (2,)", 8, "malformed");
    BAD("'shape': (2,", 8, "shape");
    BAD("'shape': (2", 8, "malformed");
    BAD("'shape: (2,), }", 8, "malformed");
    BAD("}", 0, "lacks 'shape'");
    expect_bad_dict("{'descr': '<f4', 'shape': (2,), }", 8, "lacks 'fortran_order'");
    expect_bad_dict("{'fortran_order': False, 'shape': (2,), }", 8, "lacks 'descr'");
    expect_bad_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8, "Fortran");
    expect_bad_dict("{'descr': '<f4', 'fortran_order': Truex, 'shape': (2,), }", 8,
                    "True or False");
    expect_bad_dict("{'descr': '<f4', 'fortran_order': 0, 'shape': (2,), }", 8, "True or False");
    expect_bad_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8, "'>f4'");
    expect_bad_dict("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8,
                    "descr");
    expect_bad_dict("{'descr': '<f4\\n', 'fortran_order': False, 'shape': (2,), }", 8, "descr");
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8 + 1,
                    "trailing");
    expect_bad_dict("['descr', '<f4']", 0, "not a dict");
    expect_bad_dict("", 0, "not a dict");
    expect_bad_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } \xc3\xa9", 8,
                    "non-ASCII");
#undef BAD

    /* Preamble problems. */
    len = make_npy(buf, sizeof buf, good, zeros, 8);
    buf[0] = 'x';
    CHECK(decode(buf, len, &err) == EDM_EFORMAT && strstr(err.message, "magic"), "bad magic");
    buf[0] = 0x93;
    buf[6] = 4;
    CHECK(decode(buf, len, &err) == EDM_EFORMAT && strstr(err.message, "version"), "v4.0");
    buf[6] = 1, buf[7] = 1;
    CHECK(decode(buf, len, &err) == EDM_EFORMAT && strstr(err.message, "version"), "v1.1");
    buf[7] = 0, buf[8] = 0xff, buf[9] = 0xff;
    CHECK(decode(buf, len, &err) == EDM_EFORMAT && strstr(err.message, "exceeds"),
          "header length past the end");
    /* v2.0 with a 4 GiB header length */
    memcpy(buf, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    CHECK(decode(buf, len, &err) == EDM_EFORMAT && strstr(err.message, "exceeds"), "v2 huge");
    CHECK(decode(buf, 11, &err) == EDM_EFORMAT, "v2 preamble truncated");
    CHECK(decode(buf, 0, &err) == EDM_EFORMAT, "empty");
    CHECK(edm_npy_decode(NULL, 0, NULL, NULL, &err) == EDM_EINVAL, "NULL out");

    /* Every proper prefix of a good file fails cleanly; every byte flip never crashes. */
    len = make_npy(buf, sizeof buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                   zeros, 48);
    int prefixes_ok = 1;
    for (size_t n = 0; n < len; n++)
        if (decode(buf, n, NULL) != EDM_EFORMAT) prefixes_ok = 0;
    CHECK(prefixes_ok, "every truncation rejected");
    static const uint8_t flips[] = {0x00, 0x01, 0x20, '\'', '(', ')', ',', '9', '{', '}', 0x80,
                                    0xff};
    int accepted = 0, bad_status = 0;
    for (size_t i = 0; i < 10 + 64; i++)
        for (size_t k = 0; k < sizeof flips; k++) {
            uint8_t save = buf[i];
            buf[i] = flips[k];
            enum edm_status st = decode(buf, len, NULL);
            if (st == EDM_OK) accepted++;
            else if (st != EDM_EFORMAT) bad_status++;
            buf[i] = save;
        }
    CHECK(bad_status == 0, "mutations: %d non-EFORMAT failures", bad_status);
    CHECK(accepted > 0, "some mutations are harmless (spaces, digits)");
}

static void test_io_errors(void) {
    edm_npy a;
    edm_error err = {0};
    CHECK(edm_npy_read("/nonexistent/x.npy", &a, &err) == EDM_EIO && strstr(err.message, "x.npy"),
          "missing file: %s", err.message);
    CHECK(edm_npy_read(tmpdir, &a, &err) == EDM_EIO, "a directory: %s", err.message);
    float v[2] = {1, 2};
    int64_t s[9] = {2, 1, 1, 1, 1, 1, 1, 1, 1}, neg[1] = {-2};
    CHECK(edm_npy_write("/nonexistent/dir/x.npy", v, 1, s, &err) == EDM_EIO, "unwritable");
    char path[300];
    tmp_path(path, sizeof path, "bad.npy");
    CHECK(edm_npy_write(path, v, 9, s, &err) == EDM_EINVAL, "9 dims");
    CHECK(edm_npy_write(path, v, -1, s, &err) == EDM_EINVAL, "-1 dims");
    CHECK(edm_npy_write(path, v, 1, neg, &err) == EDM_EINVAL, "negative dim");
    CHECK(edm_npy_write(path, NULL, 1, s, &err) == EDM_EINVAL, "NULL data");
    CHECK(edm_npy_write(path, NULL, 1, (int64_t[]){0}, &err) == EDM_OK, "NULL data, 0 elements");
    CHECK(access("/dev/full", W_OK) != 0 ||
              edm_npy_write("/dev/full", v, 1, s, &err) == EDM_EIO,
          "disk full reported");
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/edm_test_npy_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trips();
    test_numpy_files();
    test_numpy_identical();
    test_hostile_headers();
    test_io_errors();
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return check_finish();
}
