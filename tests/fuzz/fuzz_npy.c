/*
 * fuzz_npy.c - libFuzzer target: the NPY decoder (core/io/npy.c) on arbitrary bytes.
 *
 * Invariants (abort on violation): a failure is EDM_EFORMAT with a message and a cleared
 * array; a success has a data pointer, at most EDM_NPY_MAX_DIMS dimensions, and re-encodes to
 * a file that decodes to the same shape and bits.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/npy.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    edm_npy a;
    edm_error err = {0};
    enum edm_status st = edm_npy_decode(data, size, "fuzz", &a, &err);
    if (st != EDM_OK) {
        FUZZ_ASSERT(st == EDM_EFORMAT || st == EDM_ENOMEM);
        FUZZ_ASSERT(a.data == NULL && a.ndim == 0 && err.status == st && err.message[0]);
        return 0;
    }
    FUZZ_ASSERT(a.data != NULL && a.ndim >= 0 && a.ndim <= EDM_NPY_MAX_DIMS);
    int64_t n = edm_npy_numel(&a);
    FUZZ_ASSERT(n >= 0 && (uint64_t)n <= size); /* every element came from at least one byte */
    uint8_t *buf = NULL;
    size_t len = 0;
    FUZZ_ASSERT(edm_npy_encode(a.data, a.ndim, a.shape, &buf, &len, &err) == EDM_OK);
    edm_npy b;
    FUZZ_ASSERT(edm_npy_decode(buf, len, "re-encoded", &b, &err) == EDM_OK);
    FUZZ_ASSERT(b.ndim == a.ndim && !memcmp(b.shape, a.shape, sizeof a.shape));
    FUZZ_ASSERT(n == 0 || !memcmp(a.data, b.data, (size_t)n * sizeof(float)));
    free(buf);
    edm_npy_clear(&b);
    edm_npy_clear(&a);
    return 0;
}

/* For replay.c --expect-reject: whether the decoder accepts the input. */
int edm_fuzz_accepts(const uint8_t *data, size_t size) {
    edm_npy a;
    enum edm_status st = edm_npy_decode(data, size, "replay", &a, NULL);
    edm_npy_clear(&a);
    return st == EDM_OK;
}
