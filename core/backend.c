/*
 * backend.c - the backend registry: the one place that knows which backends exist.
 *
 * edm_backend_new resolves AUTO (CUDA when a usable device is present, else CPU) and calls
 * the chosen backend's constructor; edm_backend_free runs the backend's destroy hook and
 * frees the common struct. Backends themselves live in backend_cpu.c and the CUDA files
 * (or cuda_stub.c when the build has no CUDA).
 */
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "status.h"

void edm_backend_options_default(edm_backend_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->kind = EDM_BACKEND_AUTO;
    opts->device = 0;
    opts->precision = EDM_PRECISION_FP32;
    opts->threads = 0;
}

enum edm_status edm_backend_new(const edm_backend_options *opts, edm_backend **out, edm_error *err) {
    edm_backend_options def;
    if (!opts) {
        edm_backend_options_default(&def);
        opts = &def;
    }
    *out = NULL;
    switch (opts->kind) {
    case EDM_BACKEND_CPU: return edm_backend_cpu_new(opts, out, err);
    case EDM_BACKEND_CUDA: return edm_backend_cuda_new(opts, out, err);
    case EDM_BACKEND_AUTO:
        if (edm_backend_cuda_available()) return edm_backend_cuda_new(opts, out, err);
        if (opts->precision != EDM_PRECISION_FP32) {
            /* Reduced precision is never a silent default: without a GPU, say so. */
            return edm_error_set(err, EDM_EUNSUPPORTED,
                                 "precision %s needs the CUDA backend, and no usable GPU was found",
                                 edm_precision_name(opts->precision));
        }
        return edm_backend_cpu_new(opts, out, err);
    }
    return edm_error_set(err, EDM_EINVAL, "unknown backend kind %d", (int)opts->kind);
}

void edm_backend_free(edm_backend *b) {
    if (!b) return;
    if (b->ops && b->ops->destroy) b->ops->destroy(b->ctx);
    free(b);
}

const char *edm_backend_describe(const edm_backend *b) {
    return b->description;
}

enum edm_backend_kind edm_backend_kind_of(const edm_backend *b) {
    return b->kind;
}

int edm_backend_failed(const edm_backend *b) {
    return b->device_lost;
}

int edm_cuda_available(void) {
    return edm_backend_cuda_available();
}

enum edm_status edm_backend_kind_parse(const char *s, enum edm_backend_kind *out) {
    if (strcmp(s, "auto") == 0) *out = EDM_BACKEND_AUTO;
    else if (strcmp(s, "cpu") == 0) *out = EDM_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0) *out = EDM_BACKEND_CUDA;
    else return EDM_EINVAL;
    return EDM_OK;
}

static const char *const precision_names[] = {"fp32", "tf32", "fp16", "bf16"};

enum edm_status edm_precision_parse(const char *s, enum edm_precision *out) {
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, precision_names[i]) == 0) {
            *out = (enum edm_precision)i;
            return EDM_OK;
        }
    }
    return EDM_EINVAL;
}

const char *edm_precision_name(enum edm_precision p) {
    return (unsigned)p < 4 ? precision_names[p] : "unknown";
}
