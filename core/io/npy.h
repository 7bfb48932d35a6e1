/*
 * npy.h - internal in-memory NPY coding (npy.c); the file API is in include/edm.h.
 *
 * The in-memory forms let the server send and receive arrays without temporary files and
 * let the fuzzer (tests/fuzz/fuzz_npy.c) drive the parser directly.
 */
#ifndef EDM_NPY_H
#define EDM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "edm.h"

/* Decodes a whole .npy image buf[0..len) ('<f4', '<f8' or '|u1', C order) into *out
 * (free with edm_npy_clear). On failure *out is cleared and EDM_EFORMAT/EDM_ENOMEM returned;
 * `what` names the source in messages (a path, "request body"). */
enum edm_status edm_npy_decode(const void *buf, size_t len, const char *what, edm_npy *out,
                               edm_error *err);

/* Encodes a '<f4' C-order NPY v1.0 array. On success *buf is a new buffer (free with free()). */
enum edm_status edm_npy_encode(const float *data, int ndim, const int64_t *shape, uint8_t **buf,
                               size_t *len, edm_error *err);

#endif /* EDM_NPY_H */
