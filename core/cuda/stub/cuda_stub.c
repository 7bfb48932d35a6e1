/*
 * cuda_stub.c - the CUDA backend's registry row in a build without CUDA (make CUDA=0, or no
 * nvcc and cuBLAS found).
 *
 * The Makefile compiles this folder instead of the .cu files above it, so every build has the same
 * registry (core/backend.c) and needs no #ifdef: the row counts no devices, and creating the
 * backend says how to get it.
 */
#include <stddef.h>

#include "ops.h"
#include "status.h"

static int cuda_stub_device_count(void) {
    return 0;
}

static enum edm_status cuda_stub_new(const edm_backend_options *opts, edm_backend **out,
                                     edm_error *err) {
    (void)opts;
    if (out) *out = NULL;
    return edm_error_set(err, EDM_EUNSUPPORTED,
                         "the cuda backend is not available: built without CUDA (make CUDA=1)");
}

const edm_backend_reg edm_backend_reg_cuda = {
    .name = "cuda",
    .compiled = 0,
    .device_count = cuda_stub_device_count,
    .create = cuda_stub_new,
};
