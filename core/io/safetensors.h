/*
 * safetensors.h - internal reader of safetensors files (spec section 0, edm-safetensors/1).
 *
 * The file is read whole and its header validated once in edm_st_open; afterwards every
 * tensor's dtype, shape and byte range are known to be consistent and inside the file, so
 * the accessors below cannot fail on the file's account. An edm_st_file is immutable after
 * opening and may be read from any number of threads.
 */
#ifndef EDM_SAFETENSORS_H
#define EDM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "edm.h"
#include "ops.h" /* enum edm_dtype */

#define EDM_ST_MAX_DIMS 8
/* The official reader's cap on the JSON header (safetensors MAX_HEADER_SIZE). */
#define EDM_ST_MAX_HEADER 100000000u

typedef struct edm_st_tensor {
    const char *name; /* borrowed: valid until edm_st_close */
    enum edm_dtype dtype;
    int ndim;                        /* 0 for a scalar */
    int64_t shape[EDM_ST_MAX_DIMS];  /* shape[i] >= 0 */
    int64_t numel;                   /* product of shape (1 for a scalar) */
    uint64_t begin, end;             /* byte range in the data section; end-begin = numel*size */
} edm_st_tensor;

typedef struct edm_st_file edm_st_file; /* opaque */

/* Reads and validates the file at path. Returns a new file (free with edm_st_close).
 * EDM_EIO when it cannot be read, EDM_EFORMAT (message names the tensor and the problem)
 * when it is malformed, EDM_ENOMEM. */
enum edm_status edm_st_open(const char *path, edm_st_file **out, edm_error *err);
/* The same from memory: copies buf[0..len); `what` names the source in messages. */
enum edm_status edm_st_open_mem(const void *buf, size_t len, const char *what, edm_st_file **out,
                                edm_error *err);
void edm_st_close(edm_st_file *f); /* NULL allowed */

/* Tensors in file order (ascending data offset). 0 <= i < count. Borrowed pointers. */
int edm_st_count(const edm_st_file *f);
const edm_st_tensor *edm_st_at(const edm_st_file *f, int i);
/* The tensor called name, or NULL. O(log n). */
const edm_st_tensor *edm_st_find(const edm_st_file *f, const char *name);

/* Converts t (F32, F16 or BF16, little endian) to fp32 into dst. dst_count must equal
 * t->numel (EDM_EINVAL otherwise, naming the tensor). t must come from f. */
enum edm_status edm_st_read_f32(const edm_st_file *f, const edm_st_tensor *t, float *dst,
                                size_t dst_count, edm_error *err);
/* The raw little-endian bytes of t (end-begin of them); borrowed, not necessarily aligned. */
const void *edm_st_data(const edm_st_file *f, const edm_st_tensor *t);

/* __metadata__: the string value of key, or NULL. Borrowed. */
const char *edm_st_metadata(const edm_st_file *f, const char *key);
/* All metadata entries in header order, for listings. 0 <= i < count. */
int edm_st_metadata_count(const edm_st_file *f);
void edm_st_metadata_at(const edm_st_file *f, int i, const char **key, const char **value);

/* The whole file as read (header and data). Borrowed. */
const void *edm_st_bytes(const edm_st_file *f, size_t *len);

/* The safetensors name of a dtype: "F32", "F16" or "BF16". */
const char *edm_st_dtype_name(enum edm_dtype t);

#endif /* EDM_SAFETENSORS_H */
