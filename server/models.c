/*
 * models.c - loading the served models and describing them.
 *
 * A model's default step count comes from its metadata ("default_steps", as a model file
 * may carry default sampler settings, spec 0) when the parameter table's steps row accepts
 * it, else the table's default, the paper's 18. Architecture names
 * follow the paper's configurations: SongUNet with positional embedding is DDPM++, with
 * Fourier embedding NCSN++; DhariwalUNet is ADM.
 */
#include "models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *srv_model_precond_name(const edm_config *cfg) {
    switch (cfg->precond) {
    case EDM_PRECOND_VP: return "vp";
    case EDM_PRECOND_VE: return "ve";
    case EDM_PRECOND_IDDPM: return "iddpm";
    case EDM_PRECOND_EDM: return "edm";
    }
    return "unknown";
}

const char *srv_model_arch_name(const edm_config *cfg) {
    if (cfg->arch == EDM_ARCH_DHARIWAL) return "adm";
    return cfg->embedding_type == EDM_EMBED_FOURIER ? "ncsnpp" : "ddpmpp";
}

static char *name_from_path(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

/* Names appear in URLs-free JSON only, but keep them tame for logs and labels. */
static int name_ok(const char *s) {
    if (!*s || strlen(s) > 128) return 0;
    for (; *s; s++)
        if (!(*s == '-' || *s == '_' || *s == '.' || *s == ':' || *s == '/' ||
              (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')))
            return 0;
    return 1;
}

int srv_models_load(struct srv_models *m, const struct srv_strlist *specs, char *err, size_t err_size) {
    memset(m, 0, sizeof *m);
    if (specs->n == 0) {
        snprintf(err, err_size, "no model given (--model PATH or --model NAME=PATH)");
        return -1;
    }
    m->items = calloc((size_t)specs->n, sizeof *m->items);
    m->entries = calloc((size_t)specs->n, sizeof *m->entries);
    if (!m->items || !m->entries) goto nomem;
    for (int i = 0; i < specs->n; i++) {
        const char *spec = specs->items[i], *eq = strchr(spec, '=');
        struct srv_model *sm = &m->items[i];
        m->n = i + 1; /* srv_models_free frees what this entry holds on any later failure */
        sm->path = strdup(eq ? eq + 1 : spec);
        if (!sm->path) goto nomem;
        edm_error eerr;
        if (edm_model_load(sm->path, &sm->model, &eerr) != EDM_OK) {
            snprintf(err, err_size, "model %s: %s", sm->path, eerr.message);
            goto fail;
        }
        const char *meta_name = edm_model_metadata(sm->model, "name");
        sm->name = eq ? strndup(spec, (size_t)(eq - spec))
                      : meta_name ? strdup(meta_name) : name_from_path(sm->path);
        if (!sm->name) goto nomem;
        if (!name_ok(sm->name)) {
            snprintf(err, err_size, "model %s: name '%s' must be 1-128 of [A-Za-z0-9._:/-]",
                     sm->path, sm->name);
            goto fail;
        }
        for (int k = 0; k < i; k++)
            if (strcmp(m->items[k].name, sm->name) == 0) {
                snprintf(err, err_size, "model %s: name '%s' is already taken by %s (use NAME=PATH)",
                         sm->path, sm->name, m->items[k].path);
                goto fail;
            }
        sm->cfg = edm_model_config(sm->model);
        sm->parameters = edm_model_param_count(sm->model);
        /* the sampler's default step count, or the file's own where it is a valid one */
        edm_sampler_params defaults;
        edm_sampler_params_default(&defaults);
        const char *steps = edm_model_metadata(sm->model, "default_steps");
        if (steps) edm_sampler_param_parse(&defaults, edm_sampler_param_find("steps"), steps, NULL);
        sm->default_steps = defaults.num_steps;
        m->entries[i] = (struct srv_catalog_entry){sm->name, sm->cfg->label_dim, sm->default_steps};
    }
    m->catalog.models = m->entries;
    m->catalog.n = m->n;
    return 0;
nomem:
    snprintf(err, err_size, "out of memory loading models");
fail:
    srv_models_free(m);
    return -1;
}

void srv_models_free(struct srv_models *m) {
    if (m->items) {
        for (int i = 0; i < m->n; i++) {
            edm_model_free(m->items[i].model);
            free(m->items[i].name);
            free(m->items[i].path);
        }
    }
    free(m->items);
    free(m->entries);
    memset(m, 0, sizeof *m);
}

json_t *srv_models_json(const struct srv_models *m) {
    json_t *data = json_array();
    for (int i = 0; data && i < m->n; i++) {
        const struct srv_model *sm = &m->items[i];
        json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:s, s:s, s:I, s:i, s:s?}",
                              "id", sm->name, "name", sm->name, "object", "model", "default", i == 0, "resolution",
                              sm->cfg->img_resolution, "channels", sm->cfg->img_channels,
                              "label_dim", sm->cfg->label_dim, "preconditioner",
                              srv_model_precond_name(sm->cfg), "architecture",
                              srv_model_arch_name(sm->cfg), "parameters", (json_int_t)sm->parameters,
                              "default_steps", sm->default_steps, "description",
                              edm_model_metadata(sm->model, "description"));
        if (!o || json_array_append_new(data, o)) {
            json_decref(data);
            return NULL;
        }
    }
    return data ? json_pack("{s:s, s:o}", "object", "list", "data", data) : NULL;
}
