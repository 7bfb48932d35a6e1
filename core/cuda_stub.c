/*
 * cuda_stub.c - the CUDA seam of a build without CUDA (make CUDA=0, or no nvcc found).
 *
 * Compiled only when the CUDA backend is off (the Makefile leaves it out otherwise), so the
 * rest of the engine links the same symbols either way and needs no #ifdef: the backend
 * constructor answers "unsupported" with the way to get it, and nothing is available.
 */
#include <stddef.h>

#include "cuda_internal.h"
#include "ops.h"
#include "status.h"

int edm_cuda_compiled(void) {
    return 0;
}

int edm_backend_cuda_available(void) {
    return 0;
}

enum edm_status edm_backend_cuda_new(const edm_backend_options *opts, edm_backend **out,
                                     edm_error *err) {
    (void)opts;
    if (out) *out = NULL;
    return edm_error_set(err, EDM_EUNSUPPORTED,
                         "the CUDA backend is not available: built without CUDA (make CUDA=1)");
}

int edm_cuda_mem_info(size_t *free_bytes, size_t *total_bytes) {
    if (free_bytes) *free_bytes = 0;
    if (total_bytes) *total_bytes = 0;
    return -1;
}

int edm_cuda_graph_stats(const edm_backend *b, long *captures, long *replays, long *fallbacks) {
    (void)b;
    if (captures) *captures = 0;
    if (replays) *replays = 0;
    if (fallbacks) *fallbacks = 0;
    return -1;
}
