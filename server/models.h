/*
 * models.h - the models this daemon serves: loading from --model specs, names, the
 * catalog the request parser sees, and the /v1/models listing.
 *
 * Ownership: srv_models owns the edm_models; they are immutable after loading and shared
 * by every thread (edm.h). Workers bind them to their own backends (scheduler.c).
 */
#ifndef SRV_MODELS_H
#define SRV_MODELS_H

#include <jansson.h>
#include <stdint.h>

#include "config.h"
#include "edm.h"
#include "json_req.h"

struct srv_model {
    char *name, *path;
    edm_model *model;
    const edm_config *cfg; /* borrowed from model */
    int default_steps;
    int64_t parameters;
};

struct srv_models {
    struct srv_model *items;
    int n;
    struct srv_catalog_entry *entries; /* [n], names borrowed from items */
    struct srv_catalog catalog;
};

/* Loads every spec ("PATH" or "NAME=PATH"). The name is NAME, else the file's metadata
 * "name", else the file name without its extension. err names the spec on failure. */
int srv_models_load(struct srv_models *m, const struct srv_strlist *specs, char *err, size_t err_size);
void srv_models_free(struct srv_models *m);

/* The /v1/models body. Returns a new reference. */
json_t *srv_models_json(const struct srv_models *m);
/* "vp" | "ve" | "iddpm" | "edm" and "ddpmpp"/"ncsnpp" (SongUNet) | "adm" (DhariwalUNet). */
const char *srv_model_precond_name(const edm_config *cfg);
const char *srv_model_arch_name(const edm_config *cfg);

#endif /* SRV_MODELS_H */
