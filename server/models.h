/*
 * models.h - the models this daemon serves: loading from --model specs, names, class names,
 * the catalog the request parser sees, and the /v1/models listing.
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
    double default_sigma_min, default_sigma_max; /* edm_sampler's, resolved for this network */
    int64_t parameters;
    int64_t created;                    /* unix seconds: the file's modification time */
    struct srv_class_name *class_names; /* [n_class_names] owned, label order; see models.c */
    int n_class_names;
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

/* The /v1/models body: every model with the server's limits. Returns a new reference. */
json_t *srv_models_json(const struct srv_models *m, const struct srv_req_limits *lim);
/* One model of it (GET /v1/models/{id}), or NULL when no model has that id. */
json_t *srv_model_json(const struct srv_models *m, const char *id,
                       const struct srv_req_limits *lim);
/* Parses a model file's "class_names" metadata for label_dim classes into a list of
 * (name, label) in label order (free each name, then the list); NULL text gives the labels'
 * numbers as names. 0, or -1 with err filled. */
int srv_class_names_parse(const char *text, int label_dim, struct srv_class_name **out, int *n,
                          char *err, size_t err_size);
/* "vp" | "ve" | "iddpm" | "edm" and "ddpmpp"/"ncsnpp" (SongUNet) | "adm" (DhariwalUNet). */
const char *srv_model_precond_name(const edm_config *cfg);
const char *srv_model_arch_name(const edm_config *cfg);

#endif /* SRV_MODELS_H */
