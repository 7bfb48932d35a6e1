/*
 * backend.c - the backend registry: the one place that knows which backends exist.
 *
 * Each backend lives whole in its own folder (core/cpu/, core/cuda/) and exports one
 * edm_backend_reg row: its name, whether this build has it, how many usable devices it sees
 * now, and its constructor. A build without a backend links its stub (core/cuda/stub/), whose
 * row says why it is missing, so every build has the same table. `auto` takes the first row
 * with a device, in the order below (fastest first).
 *
 * Adding a backend: a folder under core/ with its ops table and row, and one line here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#include "status.h"

extern const edm_backend_reg edm_backend_reg_cuda; /* core/cuda/ (or core/cuda/stub/) */
extern const edm_backend_reg edm_backend_reg_cpu;  /* core/cpu/ */

static const edm_backend_reg *const registry[] = {
    &edm_backend_reg_cuda,
    &edm_backend_reg_cpu,
};
enum { N_REGISTRY = sizeof registry / sizeof registry[0] };

void edm_backend_options_default(edm_backend_options *opts) {
    memset(opts, 0, sizeof *opts);
    opts->name = "auto";
    opts->device = 0;
    opts->precision = EDM_PRECISION_FP32;
    opts->threads = 0;
}

int edm_backend_registry_count(void) {
    return N_REGISTRY;
}

static void info_of(const edm_backend_reg *r, edm_backend_info *out) {
    out->name = r->name;
    out->compiled = r->compiled;
    out->devices = r->compiled ? r->device_count() : 0;
}

enum edm_status edm_backend_registry_get(int i, edm_backend_info *out, edm_error *err) {
    if (i < 0 || i >= N_REGISTRY)
        return edm_error_set(err, EDM_EINVAL, "backend index %d is out of range 0..%d", i,
                             N_REGISTRY - 1);
    info_of(registry[i], out);
    return EDM_OK;
}

/* The row `name` names: a registry name, or "auto" (NULL too) for the first with a device. */
static enum edm_status lookup(const char *name, const edm_backend_reg **out, edm_error *err) {
    *out = NULL;
    if (!name || strcmp(name, "auto") == 0) {
        for (int i = 0; i < N_REGISTRY; i++)
            if (registry[i]->compiled && registry[i]->device_count() > 0) {
                *out = registry[i];
                return EDM_OK;
            }
        return edm_error_set(err, EDM_EDEVICE, "auto: no backend has a usable device");
    }
    for (int i = 0; i < N_REGISTRY; i++)
        if (strcmp(name, registry[i]->name) == 0) {
            *out = registry[i];
            return EDM_OK;
        }
    char names[128] = "auto";
    for (int i = 0; i < N_REGISTRY; i++) {
        size_t len = strlen(names);
        snprintf(names + len, sizeof names - len, "%s%s", i + 1 < N_REGISTRY ? ", " : " or ",
                 registry[i]->name);
    }
    return edm_error_set(err, EDM_EINVAL, "unknown backend '%s': expected %s", name, names);
}

enum edm_status edm_backend_lookup(const char *name, edm_backend_info *out, edm_error *err) {
    const edm_backend_reg *r;
    enum edm_status st = lookup(name, &r, err);
    if (st == EDM_OK) info_of(r, out);
    return st;
}

enum edm_status edm_backend_new(const edm_backend_options *opts, edm_backend **out, edm_error *err) {
    edm_backend_options def;
    if (!opts) {
        edm_backend_options_default(&def);
        opts = &def;
    }
    *out = NULL;
    const edm_backend_reg *r;
    enum edm_status st = lookup(opts->name, &r, err);
    if (st != EDM_OK) return st;
    st = r->create(opts, out, err);
    if (st != EDM_OK && (!opts->name || strcmp(opts->name, "auto") == 0) && err) {
        /* Reduced precision is never a silent default: say what auto found. */
        char why[sizeof err->message];
        memcpy(why, err->message, sizeof why);
        edm_error_set(err, st, "auto chose %s (the first backend with a usable device): %s",
                      r->name, why);
    }
    if (st == EDM_OK) (*out)->name = r->name;
    return st;
}

void edm_backend_free(edm_backend *b) {
    if (!b) return;
    if (b->ops && b->ops->destroy) b->ops->destroy(b->ctx);
    free(b);
}

const char *edm_backend_describe(const edm_backend *b) {
    return b->description;
}

const char *edm_backend_name(const edm_backend *b) {
    return b->name;
}

int edm_backend_device_lost(const edm_backend *b) {
    return b->device_lost;
}

enum edm_status edm_backend_mem_info(const edm_backend *b, size_t *free_bytes, size_t *total_bytes,
                                     edm_error *err) {
    if (!b->ops->mem_info || b->ops->mem_info(b->ctx, free_bytes, total_bytes))
        return edm_error_set(err, EDM_EUNSUPPORTED, "%s: device memory is not known", b->name);
    return EDM_OK;
}

enum edm_status edm_backend_counter(const edm_backend *b, const char *name, long *value,
                                    edm_error *err) {
    if (!b->ops->counter || b->ops->counter(b->ctx, name, value))
        return edm_error_set(err, EDM_EUNSUPPORTED, "%s: no counter named '%s'", b->name, name);
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
