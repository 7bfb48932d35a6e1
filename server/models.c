/*
 * models.c - loading the served models and describing them.
 *
 * A model's default step count comes from its metadata ("default_steps", as a model file
 * may carry default sampler settings, spec 0) when the parameter table's steps row accepts
 * it, else the table's default, the paper's 18. Architecture names
 * follow the paper's configurations: SongUNet with positional embedding is DDPM++, with
 * Fourier embedding NCSN++; DhariwalUNet is ADM.
 *
 * Class names (what a request's prompt names, tools/edmfile.py): the metadata key
 * "class_names" holds a JSON array with one entry per class label, each a name or an array
 * of names ([["0", "zero"], ["1", "one"], ...] or ["airplane", "automobile", ...]); the first
 * name of a class is the one to show. Names are unique without regard to case across all
 * classes, so a prompt can never name two. A conditional model without the key answers to its
 * labels' numbers ("0", "1", ...).
 *
 * A model object of /v1/models is OpenAI's (id, object, created, owned_by) plus what a client
 * needs to ask for no more than the server gives: resolution and size, channels, class names,
 * the server's limits (max_n, max_steps, timeouts) and every sampler setting's type, range and
 * default for this model (the engine's parameter table, with the steps cap of max-steps and
 * sigma_min / sigma_max resolved for the network).
 */
#include "models.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

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

static void class_names_free(struct srv_class_name *names, int n) {
    for (int i = 0; names && i < n; i++) free((char *)names[i].name);
    free(names);
}

/* Appends one name of class `label`; checks it and that no class has it already. */
static int class_name_add(struct srv_class_name *names, int *n, json_t *v, int label, char *err,
                          size_t err_size) {
    const char *s = json_string_value(v);
    size_t len = s ? strlen(s) : 0;
    if (!s || len == 0 || len > 64 || strspn(s, " ") == len) {
        snprintf(err, err_size,
                 "class_names: class %d: a name must be a non-blank string of at most 64 bytes",
                 label);
        return -1;
    }
    for (int i = 0; i < *n; i++)
        if (strcasecmp(names[i].name, s) == 0) {
            snprintf(err, err_size, "class_names: \"%.64s\" names class %d and class %d", s,
                     names[i].label, label);
            return -1;
        }
    names[*n].name = strdup(s);
    if (!names[*n].name) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    names[(*n)++].label = label;
    return 0;
}

int srv_class_names_parse(const char *text, int label_dim, struct srv_class_name **out, int *n,
                          char *err, size_t err_size) {
    *out = NULL;
    *n = 0;
    if (label_dim <= 0) {
        if (!text) return 0;
        snprintf(err, err_size, "class_names given but the model is unconditional (label_dim 0)");
        return -1;
    }
    json_error_t jerr;
    json_t *root = text ? json_loads(text, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    if (text && (!json_is_array(root) || json_array_size(root) != (size_t)label_dim)) {
        snprintf(
            err, err_size,
            "class_names must be a JSON array of %d entries (a name or a list of names per class)",
            label_dim);
        json_decref(root);
        return -1;
    }
    size_t cap = (size_t)label_dim;
    for (size_t k = 0; root && k < json_array_size(root); k++) {
        json_t *e = json_array_get(root, k);
        cap += json_is_array(e) ? json_array_size(e) : 1;
    }
    struct srv_class_name *names = calloc(cap, sizeof *names);
    int rc = names ? 0 : -1;
    if (!names) snprintf(err, err_size, "out of memory");
    for (int label = 0; rc == 0 && label < label_dim; label++) {
        json_t *e = root ? json_array_get(root, (size_t)label) : NULL;
        if (!e) {
            char number[16];
            snprintf(number, sizeof number, "%d", label);
            json_t *v = json_string(number);
            rc = class_name_add(names, n, v, label, err, err_size);
            json_decref(v);
        } else if (json_is_array(e) && json_array_size(e) > 0) {
            for (size_t k = 0; rc == 0 && k < json_array_size(e); k++)
                rc = class_name_add(names, n, json_array_get(e, k), label, err, err_size);
        } else {
            rc = class_name_add(names, n, json_is_array(e) ? NULL : e, label, err, err_size);
        }
    }
    json_decref(root);
    if (rc) {
        class_names_free(names, *n);
        *n = 0;
        return -1;
    }
    *out = names;
    return 0;
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
        edm_plan *plan = NULL;
        if (edm_plan_new(sm->model, &defaults, &plan, &eerr) != EDM_OK) {
            snprintf(err, err_size, "model %s: the default sampler settings: %s", sm->path,
                     eerr.message);
            goto fail;
        }
        edm_plan_sigma_range(plan, &sm->default_sigma_min, &sm->default_sigma_max);
        edm_plan_free(plan);
        struct stat st;
        sm->created = stat(sm->path, &st) == 0 ? (int64_t)st.st_mtime : 0;
        char why[200];
        if (srv_class_names_parse(edm_model_metadata(sm->model, "class_names"), sm->cfg->label_dim,
                                  &sm->class_names, &sm->n_class_names, why, sizeof why)) {
            snprintf(err, err_size, "model %s: %s", sm->path, why);
            goto fail;
        }
        m->entries[i] = (struct srv_catalog_entry){
            .name = sm->name,
            .label_dim = sm->cfg->label_dim,
            .default_steps = sm->default_steps,
            .resolution = sm->cfg->img_resolution,
            .sha256 = edm_model_sha256(sm->model),
            .class_names = sm->class_names,
            .n_class_names = sm->n_class_names,
            .channels = sm->cfg->img_channels,
        };
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
            class_names_free(m->items[i].class_names, m->items[i].n_class_names);
            free(m->items[i].name);
            free(m->items[i].path);
        }
    }
    free(m->items);
    free(m->entries);
    memset(m, 0, sizeof *m);
}

/* class_names: one array of names per label, or null (unconditional). */
static json_t *class_names_json(const struct srv_model *sm) {
    if (sm->cfg->label_dim == 0) return json_null();
    json_t *classes = json_array();
    for (int l = 0; classes && l < sm->cfg->label_dim; l++)
        json_array_append_new(classes, json_array());
    for (int i = 0; classes && i < sm->n_class_names; i++)
        json_array_append_new(json_array_get(classes, (size_t)sm->class_names[i].label),
                              json_string(sm->class_names[i].name));
    return classes;
}

/* Every sampler setting for this model: the parameter table's row (JSON Schema words), the
 * steps cap of max-steps, and the defaults this model gets. */
static json_t *sampler_json(const struct srv_model *sm, const struct srv_req_limits *lim) {
    char *text = edm_sampler_param_table_json(0);
    json_t *rows = text ? json_loads(text, 0, NULL) : NULL, *out = json_object();
    free(text);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        const char *name = json_string_value(json_object_get(row, "name"));
        if (strcmp(name, "steps") == 0) {
            json_int_t hi = json_integer_value(json_object_get(row, "maximum"));
            json_object_set_new(row, "maximum",
                                json_integer(lim->max_steps < hi ? lim->max_steps : hi));
            json_object_set_new(row, "default", json_integer(sm->default_steps));
        } else if (strcmp(name, "sigma_min") == 0 || strcmp(name, "sigma_max") == 0) {
            /* edm_sampler's, in the network's range; the ablation sampler's depend on disc */
            json_object_set_new(
                row, "default",
                json_real(name[6] == 'i' ? sm->default_sigma_min : sm->default_sigma_max));
        }
        json_object_set(out, name, row);
    }
    json_decref(rows);
    return out;
}

static json_t *model_json(const struct srv_models *m, int i, const struct srv_req_limits *lim) {
    const struct srv_model *sm = &m->items[i];
    const char *owner = edm_model_metadata(sm->model, "owned_by");
    char size[32];
    snprintf(size, sizeof size, "%dx%d", sm->cfg->img_resolution, sm->cfg->img_resolution);
    return json_pack(
        "{s:s, s:s, s:I, s:s, s:s, s:b, s:i, s:s, s:i, s:i, s:o, s:s, s:s, s:I, s:s, s:i,"
        " s:{s:i, s:i, s:I, s:I}, s:o, s:s?}",
        "id", sm->name, "object", "model", "created", (json_int_t)sm->created, "owned_by",
        owner ? owner : "edm-serve", "name", sm->name, "default", i == 0, "resolution",
        sm->cfg->img_resolution, "size", size, "channels", sm->cfg->img_channels, "label_dim",
        sm->cfg->label_dim, "class_names", class_names_json(sm), "preconditioner",
        srv_model_precond_name(sm->cfg), "architecture", srv_model_arch_name(sm->cfg), "parameters",
        (json_int_t)sm->parameters, "sha256", edm_model_sha256(sm->model), "default_steps",
        sm->default_steps, "limits", "max_n", lim->max_n, "max_steps", lim->max_steps,
        "default_timeout_ms", (json_int_t)lim->default_timeout_ms, "max_timeout_ms",
        (json_int_t)lim->max_timeout_ms, "sampler", sampler_json(sm, lim), "description",
        edm_model_metadata(sm->model, "description"));
}

json_t *srv_models_json(const struct srv_models *m, const struct srv_req_limits *lim) {
    json_t *data = json_array();
    for (int i = 0; data && i < m->n; i++) {
        json_t *o = model_json(m, i, lim);
        if (!o || json_array_append_new(data, o)) {
            json_decref(data);
            return NULL;
        }
    }
    return data ? json_pack("{s:s, s:o}", "object", "list", "data", data) : NULL;
}

json_t *srv_model_json(const struct srv_models *m, const char *id,
                       const struct srv_req_limits *lim) {
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->items[i].name, id) == 0) return model_json(m, i, lim);
    return NULL;
}
