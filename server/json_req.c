/*
 * json_req.c - generation request parser: JSON bytes -> struct srv_gen_request.
 *
 * Rules (DESIGN.md, jansson lessons): duplicate keys are rejected at load time; every field
 * is type-checked by hand (json_integer_value of a string is silently 0); unknown fields are
 * errors, never ignored; null means "the default". The sampler's fields are the rows of the
 * engine's parameter table (edm_sampler_param_table: names, types, ranges), set through the
 * engine, which also applies generate.py's rule (spec 3.3): giving any ablation-only field
 * (solver, disc, schedule, scaling, alpha) selects the ablation sampler with the others at
 * their ablation defaults. Range errors come from edm_sampler_params_validate, whose
 * err.field is the request's field name.
 */
#include "json_req.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define SEED_MAX 0xffffffffffffffffull

/* The request's own fields. They are checked in a fixed order (these up to class_labels, then
 * the sampler's in table order, then timeout_ms), so that a body with several bad fields
 * always reports the same. */
enum field { F_MODEL, F_N, F_SEED, F_SEEDS, F_CLASS_LABEL, F_CLASS_LABELS, F_TIMEOUT_MS, F_COUNT };
static const char *const field_names[F_COUNT] = {"model",       "n",            "seed",      "seeds",
                                                 "class_label", "class_labels", "timeout_ms"};

static enum srv_err bad(struct srv_error *err, const char *param, const char *what) {
    return srv_error_set(err, SRV_E_INVALID_PARAM, param, "'%s' %s", param, what);
}

/* An integer field; reals such as 18.0 are refused (the API types are exact). */
static enum srv_err get_int(json_t *v, const char *name, long long lo, long long hi, long long *out,
                            struct srv_error *err) {
    if (!json_is_integer(v)) return bad(err, name, "must be an integer");
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return srv_error_set(err, SRV_E_INVALID_PARAM, name, "'%s' must be in %lld..%lld (got %lld)",
                             name, lo, hi, x);
    *out = x;
    return SRV_OK;
}

/* A number field (not null); with allow_inf (S_max) also "inf". */
static enum srv_err get_number(json_t *v, const char *name, int allow_inf, double *out,
                               struct srv_error *err) {
    if (allow_inf && json_is_string(v) && strcmp(json_string_value(v), "inf") == 0) {
        *out = INFINITY;
        return SRV_OK;
    }
    if (!json_is_number(v)) return bad(err, name, allow_inf ? "must be a number or \"inf\"" : "must be a number");
    double x = json_number_value(v);
    if (!isfinite(x)) return bad(err, name, "must be finite");
    *out = x;
    return SRV_OK;
}

/* A seed: a JSON integer >= 0 (jansson integers are signed 64-bit). */
static enum srv_err get_seed(json_t *v, const char *name, uint64_t *out, struct srv_error *err) {
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bad(err, name, "must be an integer >= 0");
    *out = (uint64_t)json_integer_value(v);
    return SRV_OK;
}

static enum srv_err get_label(json_t *v, const char *name, int label_dim, int *out,
                              struct srv_error *err) {
    if (json_is_null(v)) {
        *out = -1;
        return SRV_OK;
    }
    if (!json_is_integer(v)) return bad(err, name, "must be an integer or null");
    long long x = json_integer_value(v);
    if (x == -1) {
        *out = -1;
        return SRV_OK;
    }
    if (label_dim == 0)
        return srv_error_set(err, SRV_E_INVALID_PARAM, name,
                             "'%s': the model is unconditional and takes no class label", name);
    if (x < 0 || x >= label_dim)
        return srv_error_set(err, SRV_E_INVALID_PARAM, name,
                             "'%s' must be in 0..%d, or -1/null for a label drawn from the seed "
                             "(got %lld)",
                             name, label_dim - 1, x);
    *out = (int)x;
    return SRV_OK;
}

/* A sampler field: the JSON type its table row wants, then the engine sets it. */
static enum srv_err get_sampler_param(json_t *v, const edm_sampler_param *d,
                                      const struct srv_req_limits *lim, edm_sampler_params *p,
                                      struct srv_error *err) {
    enum srv_err rc;
    enum edm_status st = EDM_EINVAL;
    edm_error eerr;
    switch (d->type) {
    case EDM_PARAM_INT: {
        long long x, hi = (long long)d->max;
        /* this server's own cap on the step count may be lower than the engine's */
        if (d->offset == offsetof(edm_sampler_params, num_steps) && lim->max_steps < hi)
            hi = lim->max_steps;
        if ((rc = get_int(v, d->name, (long long)d->min, hi, &x, err))) return rc;
        st = edm_sampler_param_set(p, d, (double)x, &eerr);
        break;
    }
    case EDM_PARAM_NUMBER: {
        double x = NAN;
        if ((rc = get_number(v, d->name, d->inf_ok, &x, err))) return rc;
        st = edm_sampler_param_set(p, d, x, &eerr);
        break;
    }
    case EDM_PARAM_CHOICE:
        if (!json_is_string(v)) {
            char names[128];
            edm_sampler_param_choices(d, ", ", names, sizeof names);
            return srv_error_set(err, SRV_E_INVALID_PARAM, d->name, "'%s' must be one of %s",
                                 d->name, names);
        }
        st = edm_sampler_param_parse(p, d, json_string_value(v), &eerr);
        break;
    }
    if (st != EDM_OK) return srv_error_set(err, SRV_E_INVALID_PARAM, d->name, "%s", eerr.message);
    return SRV_OK;
}

void srv_gen_request_clear(struct srv_gen_request *r) {
    free(r->seeds);
    free(r->class_labels);
    memset(r, 0, sizeof *r);
}

void srv_gen_request_fill_seeds(struct srv_gen_request *r, uint64_t base) {
    for (int i = 0; i < r->n; i++) r->seeds[i] = base + (uint64_t)i;
}

enum srv_err srv_json_req_parse_generate(const char *body, size_t len, const struct srv_catalog *cat,
                                         const struct srv_req_limits *lim,
                                         struct srv_gen_request *out, struct srv_error *err) {
    json_t *root = NULL, *f[F_COUNT] = {0}, *fs[EDM_SAMPLER_PARAM_COUNT] = {0};
    enum srv_err rc = SRV_OK;
    memset(out, 0, sizeof *out);
    edm_sampler_params_default(&out->params);

    if (len == 0) {
        root = json_object(); /* an empty body asks for every default */
    } else {
        json_error_t jerr;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
            rc = srv_error_set(err, SRV_E_INVALID_JSON, NULL, "invalid JSON at line %d column %d: %s",
                               jerr.line, jerr.column, jerr.text);
            goto fail;
        }
    }
    if (!root) {
        rc = srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
        goto fail;
    }
    if (!json_is_object(root)) {
        rc = srv_error_set(err, SRV_E_INVALID_JSON, NULL, "the body must be a JSON object");
        goto fail;
    }

    /* Unknown fields are errors; report the first in the object's order. The sampler's
     * fields go by the table's names only (not generate.py's keywords num_steps etc.). */
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        int k = 0, s = 0;
        while (k < F_COUNT && strcmp(field_names[k], key) != 0) k++;
        while (s < EDM_SAMPLER_PARAM_COUNT && strcmp(edm_sampler_param_table[s].name, key) != 0) s++;
        if (k == F_COUNT && s == EDM_SAMPLER_PARAM_COUNT) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, key, "unknown field '%s'", key);
            goto fail;
        }
        if (k < F_COUNT) f[k] = value;
        else fs[s] = value;
    }

    /* model first: the label range and default steps depend on it */
    out->model = 0;
    if (f[F_MODEL] && !json_is_null(f[F_MODEL])) {
        if (!json_is_string(f[F_MODEL])) {
            rc = bad(err, "model", "must be a string");
            goto fail;
        }
        const char *name = json_string_value(f[F_MODEL]);
        int m = 0;
        while (m < cat->n && strcmp(cat->models[m].name, name) != 0) m++;
        if (m == cat->n) {
            rc = srv_error_set(err, SRV_E_MODEL_NOT_FOUND, "model",
                               "model '%.200s' is not served here (GET /v1/models)", name);
            goto fail;
        }
        out->model = m;
    }
    if (cat->n < 1) {
        rc = srv_error_set(err, SRV_E_NOT_READY, NULL, "no model is loaded");
        goto fail;
    }
    const struct srv_catalog_entry *model = &cat->models[out->model];

    long long x;
    int n = -1; /* -1: not given */
    if (f[F_N] && !json_is_null(f[F_N])) {
        if ((rc = get_int(f[F_N], "n", 1, lim->max_n, &x, err))) goto fail;
        n = (int)x;
    }
    if (f[F_SEED] && f[F_SEEDS] && !json_is_null(f[F_SEED]) && !json_is_null(f[F_SEEDS])) {
        rc = bad(err, "seeds", "cannot be given together with 'seed'");
        goto fail;
    }
    if (f[F_CLASS_LABEL] && f[F_CLASS_LABELS] && !json_is_null(f[F_CLASS_LABEL]) &&
        !json_is_null(f[F_CLASS_LABELS])) {
        rc = bad(err, "class_labels", "cannot be given together with 'class_label'");
        goto fail;
    }
    json_t *seeds = f[F_SEEDS] && !json_is_null(f[F_SEEDS]) ? f[F_SEEDS] : NULL;
    json_t *labels = f[F_CLASS_LABELS] && !json_is_null(f[F_CLASS_LABELS]) ? f[F_CLASS_LABELS] : NULL;
    if (seeds && !json_is_array(seeds)) {
        rc = bad(err, "seeds", "must be an array of integers");
        goto fail;
    }
    if (labels && !json_is_array(labels)) {
        rc = bad(err, "class_labels", "must be an array of integers or nulls");
        goto fail;
    }
    /* n comes from n, else from the length of seeds, else of class_labels, else 1 */
    json_t *lists[2] = {seeds, labels};
    const char *list_names[2] = {"seeds", "class_labels"};
    for (int k = 0; k < 2; k++) {
        if (!lists[k]) continue;
        size_t len_k = json_array_size(lists[k]);
        if (len_k < 1 || len_k > (size_t)lim->max_n) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, list_names[k],
                               "'%s' must hold 1..%d entries (got %zu)", list_names[k], lim->max_n,
                               len_k);
            goto fail;
        }
        if (n < 0) n = (int)len_k;
        if ((size_t)n != len_k) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, list_names[k],
                               "'%s' has %zu entries but n is %d", list_names[k], len_k, n);
            goto fail;
        }
    }
    if (n < 0) n = 1;
    out->n = n;
    out->seeds = calloc((size_t)n, sizeof *out->seeds);
    out->class_labels = calloc((size_t)n, sizeof *out->class_labels);
    if (!out->seeds || !out->class_labels) {
        rc = srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
        goto fail;
    }

    if (seeds) {
        for (int i = 0; i < n; i++)
            if ((rc = get_seed(json_array_get(seeds, (size_t)i), "seeds", &out->seeds[i], err))) goto fail;
        out->seeds_given = 1;
    } else if (f[F_SEED] && !json_is_null(f[F_SEED])) {
        uint64_t s;
        if ((rc = get_seed(f[F_SEED], "seed", &s, err))) goto fail;
        if (s > SEED_MAX - (uint64_t)n) {
            rc = bad(err, "seed", "is too large for n consecutive seeds");
            goto fail;
        }
        srv_gen_request_fill_seeds(out, s);
        out->seeds_given = 1;
    }

    int label = -1;
    if (f[F_CLASS_LABEL] && (rc = get_label(f[F_CLASS_LABEL], "class_label", model->label_dim, &label, err)))
        goto fail;
    for (int i = 0; i < n; i++) {
        out->class_labels[i] = label;
        if (labels && (rc = get_label(json_array_get(labels, (size_t)i), "class_labels",
                                      model->label_dim, &out->class_labels[i], err)))
            goto fail;
    }

    edm_sampler_params *p = &out->params;
    p->num_steps = model->default_steps >= 2 ? model->default_steps : p->num_steps;
    for (int s = 0; s < EDM_SAMPLER_PARAM_COUNT; s++) {
        if (!fs[s] || json_is_null(fs[s])) continue; /* the default */
        if ((rc = get_sampler_param(fs[s], &edm_sampler_param_table[s], lim, p, err))) goto fail;
    }

    out->timeout_ms = lim->default_timeout_ms;
    if (f[F_TIMEOUT_MS] && !json_is_null(f[F_TIMEOUT_MS])) {
        if ((rc = get_int(f[F_TIMEOUT_MS], "timeout_ms", 1, lim->max_timeout_ms, &x, err))) goto fail;
        out->timeout_ms = (long)x;
    }

    edm_error eerr;
    if (edm_sampler_params_validate(p, &eerr) != EDM_OK) {
        rc = srv_error_set(err, SRV_E_INVALID_PARAM, eerr.field, "%s", eerr.message);
        goto fail;
    }
    json_decref(root);
    return SRV_OK;

fail:
    json_decref(root);
    srv_gen_request_clear(out);
    return rc;
}
