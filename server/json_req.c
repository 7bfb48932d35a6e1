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
 *
 * OpenAI's Images API fields, so that its SDKs and the tools built on them work unchanged:
 * prompt names the class of a class-conditional model (its class names, matched without
 * regard to case; empty: a class drawn from each seed), size must be the model's own, output
 * format PNG, response_format b64_json or url; quality, style and user are accepted and have
 * no effect. And the informational fields of a PNG's Request text (edm_plan_record_json), so
 * that the text POSTed back makes the same image: model_sha256 must be the served file's,
 * nfe must be what the settings cost, edm_serve_version is not checked.
 */
#include "json_req.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SEED_MAX 0xffffffffffffffffull

/* The request's own fields. They are checked in a fixed order (these up to prompt, then the
 * sampler's in table order, then the rest), so that a body with several bad fields always
 * reports the same. */
enum field {
    F_MODEL,
    F_MODEL_SHA256,
    F_N,
    F_SEED,
    F_SEEDS,
    F_CLASS_LABEL,
    F_CLASS_LABELS,
    F_PROMPT,
    F_TIMEOUT_MS,
    F_NFE,
    F_SIZE,
    F_RESPONSE_FORMAT,
    F_OUTPUT_FORMAT,
    F_QUALITY,
    F_STYLE,
    F_USER,
    F_VERSION,
    F_VARIATION_SEED,
    F_VARIATION_STRENGTH,
    F_INIT_IMAGE,
    F_MASK,
    F_INIT_IMAGE_SHA256,
    F_MASK_SHA256,
    F_COUNT
};
static const char *const field_names[F_COUNT] = {"model",
                                                 "model_sha256",
                                                 "n",
                                                 "seed",
                                                 "seeds",
                                                 "class_label",
                                                 "class_labels",
                                                 "prompt",
                                                 "timeout_ms",
                                                 "nfe",
                                                 "size",
                                                 "response_format",
                                                 "output_format",
                                                 "quality",
                                                 "style",
                                                 "user",
                                                 "edm_serve_version",
                                                 "variation_seed",
                                                 "variation_strength",
                                                 "init_image",
                                                 "mask",
                                                 "init_image_sha256",
                                                 "mask_sha256"};

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

/* A string field or null (*out NULL). */
static enum srv_err get_string(json_t *v, const char *name, const char **out,
                               struct srv_error *err) {
    *out = NULL;
    if (!v || json_is_null(v)) return SRV_OK;
    if (!json_is_string(v)) return bad(err, name, "must be a string or null");
    *out = json_string_value(v);
    return SRV_OK;
}

/* A string field that must be one of words (NULL-terminated), or null (*out -1). */
static enum srv_err get_word(json_t *v, const char *name, const char *const *words, int *out,
                             struct srv_error *err) {
    const char *s;
    enum srv_err rc = get_string(v, name, &s, err);
    *out = -1;
    if (rc || !s) return rc;
    char list[96] = "";
    for (int i = 0; words[i]; i++) {
        if (strcmp(words[i], s) == 0) {
            *out = i;
            return SRV_OK;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s\"%s\"", i ? " or " : "",
                 words[i]);
    }
    return srv_error_set(err, SRV_E_INVALID_PARAM, name, "'%s' must be %s (got \"%.40s\")", name,
                         list, s);
}

/* The classes a model's names cover, for a message: "0/zero, 1/one, ..." (shortened). */
static void class_name_list(const struct srv_catalog_entry *m, char *buf, size_t size) {
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n_class_names && at + 8 < size; i++) {
        const struct srv_class_name *c = &m->class_names[i];
        const char *sep = i == 0 ? "" : c->label == m->class_names[i - 1].label ? "/" : ", ";
        int k = snprintf(buf + at, size - at, "%s%s", sep, c->name);
        if (k < 0 || (size_t)k >= size - at) {
            snprintf(buf + (size > 6 ? size - 6 : 0), size > 6 ? 6 : size, ", ...");
            return;
        }
        at += (size_t)k;
    }
}

/* The class a prompt names: -1 for an empty prompt (a class drawn from each seed); an error
 * for a name the model does not have, or any name for an unconditional model. */
static enum srv_err prompt_label(const char *prompt, const struct srv_catalog_entry *m, int *label,
                                 struct srv_error *err) {
    while (isspace((unsigned char)*prompt)) prompt++;
    size_t len = strlen(prompt);
    while (len && isspace((unsigned char)prompt[len - 1])) len--;
    *label = -1;
    if (len == 0) return SRV_OK;
    if (m->label_dim == 0)
        return srv_error_set(err, SRV_E_INVALID_PARAM, "prompt",
                             "'prompt': model '%s' is unconditional and makes no class, so the "
                             "prompt must be empty (got \"%.40s\")",
                             m->name, prompt);
    for (int i = 0; i < m->n_class_names; i++)
        if (strlen(m->class_names[i].name) == len &&
            strncasecmp(m->class_names[i].name, prompt, len) == 0) {
            *label = m->class_names[i].label;
            return SRV_OK;
        }
    char names[200];
    class_name_list(m, names, sizeof names);
    return srv_error_set(err, SRV_E_INVALID_PARAM, "prompt",
                         "'prompt' \"%.*s\" is not a class of model '%s'; it names one of: %s "
                         "(any case), or is empty for a class drawn from the seed",
                         (int)(len > 40 ? 40 : len), prompt, m->name, names);
}

/* size: "WxH" equal to the model's resolution, or "auto" (the model's). */
static enum srv_err check_size(const char *size, const struct srv_catalog_entry *m,
                               struct srv_error *err) {
    if (!size || strcmp(size, "auto") == 0) return SRV_OK;
    char *end;
    long w = strtol(size, &end, 10), h = -1;
    if (end != size && isdigit((unsigned char)size[0]) && *end == 'x' &&
        isdigit((unsigned char)end[1]))
        h = strtol(end + 1, &end, 10);
    if (h >= 0 && *end == '\0' &&
        (m->resolution == 0 || (w == m->resolution && h == m->resolution)))
        return SRV_OK;
    if (m->resolution == 0) return bad(err, "size", "must be \"WIDTHxHEIGHT\" or \"auto\"");
    return srv_error_set(err, SRV_E_INVALID_PARAM, "size",
                         "'size' must be \"%dx%d\", the size model '%s' makes, or \"auto\" (got "
                         "\"%.32s\")",
                         m->resolution, m->resolution, m->name, size);
}

void srv_gen_request_clear(struct srv_gen_request *r) {
    free(r->seeds);
    free(r->class_labels);
    srv_req_image_clear(&r->image);
    memset(r, 0, sizeof *r);
}

/* The variation of a seed: variation_seed, and variation_strength in [0, 1] (> 0 needs the
 * seed). */
static enum srv_err get_variation(json_t *seed, json_t *strength, struct srv_gen_request *out,
                                  struct srv_error *err) {
    enum srv_err rc;
    int has_seed = seed && !json_is_null(seed);
    if (has_seed && (rc = get_seed(seed, "variation_seed", &out->variation_seed, err))) return rc;
    if (!strength || json_is_null(strength)) return SRV_OK;
    if ((rc = get_number(strength, "variation_strength", 0, &out->variation_strength, err))) return rc;
    if (!(out->variation_strength >= 0 && out->variation_strength <= 1))
        return srv_error_set(err, SRV_E_INVALID_PARAM, "variation_strength",
                             "'variation_strength' must be in [0, 1] (got %g)", out->variation_strength);
    if (out->variation_strength > 0 && !has_seed)
        return bad(err, "variation_strength", "needs a variation_seed to mix in");
    return SRV_OK;
}

/* init_image / mask of a JSON body: base64 text into new buffers of src (free them). */
static enum srv_err get_images(json_t *image, json_t *mask, struct srv_image_src *src,
                               struct srv_error *err) {
    json_t *v[2] = {image, mask};
    const char *names[2] = {"init_image", "mask"};
    const uint8_t **bytes[2] = {&src->image, &src->mask};
    size_t *lens[2] = {&src->image_len, &src->mask_len};
    for (int k = 0; k < 2; k++) {
        if (!v[k] || json_is_null(v[k])) continue;
        if (!json_is_string(v[k]))
            return bad(err, names[k], "must be a PNG as base64 (or a data:image/png;base64, URL), or null");
        uint8_t *buf;
        enum srv_err rc = srv_image_b64_decode(json_string_value(v[k]), json_string_length(v[k]), names[k],
                                               &buf, lens[k], err);
        if (rc) return rc;
        *bytes[k] = buf;
    }
    return SRV_OK;
}

/* A Request text's hashes of the inputs: each must be the hash of the file sent. */
static enum srv_err check_hashes(json_t *image_sha, json_t *mask_sha, const struct srv_image_src *src,
                                 const struct srv_req_image *img, struct srv_error *err) {
    const struct {
        json_t *v;
        const char *name, *input, *have;
    } h[2] = {{image_sha, "init_image_sha256", src->image_param, img->init_sha256},
              {mask_sha, "mask_sha256", src->mask_param, img->mask_sha256}};
    for (int k = 0; k < 2; k++) {
        const char *want;
        enum srv_err rc = get_string(h[k].v, h[k].name, &want, err);
        if (rc || !want) {
            if (rc) return rc;
            continue;
        }
        if (!h[k].have[0])
            return srv_error_set(err, SRV_E_INVALID_PARAM, h[k].name,
                                 "'%s': the image was made from a file (sha256 %.16s...) that this request "
                                 "does not send: send it as '%s'",
                                 h[k].name, want, h[k].input);
        if (strcasecmp(want, h[k].have) != 0)
            return srv_error_set(err, SRV_E_INVALID_PARAM, h[k].name,
                                 "'%s': the '%s' sent is not the file the image was made from (its sha256 "
                                 "is %.16s..., not %.16s...)",
                                 h[k].name, h[k].input, h[k].have, want);
    }
    return SRV_OK;
}

void srv_gen_request_fill_seeds(struct srv_gen_request *r, uint64_t base) {
    for (int i = 0; i < r->n; i++) r->seeds[i] = base + (uint64_t)i;
}

enum srv_err srv_json_req_parse_generate(const char *body, size_t len, const struct srv_catalog *cat,
                                         const struct srv_req_limits *lim,
                                         struct srv_gen_request *out, struct srv_error *err) {
    json_t *root = NULL;
    memset(out, 0, sizeof *out);
    if (len == 0) {
        root = json_object(); /* an empty body asks for every default */
        if (!root) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
    } else {
        json_error_t jerr;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
            return srv_error_set(err, SRV_E_INVALID_JSON, NULL, "invalid JSON at line %d column %d: %s",
                                 jerr.line, jerr.column, jerr.text);
    }
    enum srv_err rc = srv_json_req_parse_object(root, NULL, cat, lim, out, err);
    json_decref(root);
    return rc;
}

enum srv_err srv_json_req_parse_object(json_t *root, const struct srv_image_src *images,
                                       const struct srv_catalog *cat, const struct srv_req_limits *lim,
                                       struct srv_gen_request *out, struct srv_error *err) {
    json_t *f[F_COUNT] = {0}, *fs[EDM_SAMPLER_PARAM_COUNT] = {0};
    enum srv_err rc = SRV_OK;
    /* the images' bytes: the caller's, or (JSON) decoded from the fields into `owned` */
    struct srv_image_src src = {.image_param = "init_image", .mask_param = "mask"};
    uint8_t *owned[2] = {NULL, NULL};
    memset(out, 0, sizeof *out);
    edm_sampler_params_default(&out->params);

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
        if (images && (k == F_INIT_IMAGE || k == F_MASK)) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, key, "'%s' is a field of the JSON API; here the "
                               "images are the file parts '%s' and '%s'", key, images->image_param,
                               images->mask_param);
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
    const char *str;
    if ((rc = get_string(f[F_MODEL_SHA256], "model_sha256", &str, err))) goto fail;
    if (str && model->sha256 && strcasecmp(str, model->sha256) != 0) {
        rc = srv_error_set(err, SRV_E_INVALID_PARAM, "model_sha256",
                           "'model_sha256': the file served as model '%s' is not the one asked "
                           "for (its sha256 is %.16s..., not %.16s...)",
                           model->name, model->sha256, str);
        goto fail;
    }

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

    /* prompt: the class of every image; a class given as well must agree */
    if ((rc = get_string(f[F_PROMPT], "prompt", &str, err))) goto fail;
    if (str) {
        if ((rc = prompt_label(str, model, &label, err))) goto fail;
        for (int i = 0; label >= 0 && i < n; i++) {
            if (out->class_labels[i] >= 0 && out->class_labels[i] != label) {
                rc = srv_error_set(err, SRV_E_INVALID_PARAM, "prompt",
                                   "'prompt' names class %d but %s asks for class %d", label,
                                   labels ? "class_labels" : "class_label", out->class_labels[i]);
                goto fail;
            }
            out->class_labels[i] = label;
        }
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

    if ((rc = get_variation(f[F_VARIATION_SEED], f[F_VARIATION_STRENGTH], out, err))) goto fail;

    /* A start from an image: which images came (decoded last, the dearest step), and the
     * settings that need one. */
    if (images) {
        src = *images;
    } else {
        rc = get_images(f[F_INIT_IMAGE], f[F_MASK], &src, err);
        owned[0] = (uint8_t *)src.image, owned[1] = (uint8_t *)src.mask;
        if (rc) goto fail;
    }
    if (!src.image) {
        const char *need = src.mask ? src.mask_param : !isnan(p->strength) ? "strength"
                                                   : !isnan(p->sigma_start) ? "sigma_start" : NULL;
        if (need) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, need, "'%s' needs an image to start from ('%s')",
                               need, src.image_param);
            goto fail;
        }
    }

    edm_error eerr;
    if (edm_sampler_params_validate(p, &eerr) != EDM_OK) {
        rc = srv_error_set(err, SRV_E_INVALID_PARAM, eerr.field, "%s", eerr.message);
        goto fail;
    }
    if (f[F_NFE] && !json_is_null(f[F_NFE])) {
        int nfe = edm_sampler_params_nfe(p);
        if ((rc = get_int(f[F_NFE], "nfe", 1, INT32_MAX, &x, err))) goto fail;
        if (x != nfe) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, "nfe",
                               "'nfe' is %d for these settings, not %lld (it is not a setting: "
                               "steps and solver decide it)",
                               nfe, x);
            goto fail;
        }
    }

    /* OpenAI's fields: what the images look like and how they come back */
    static const char *const formats[] = {"b64_json", "url", NULL}, *const png[] = {"png", NULL};
    int word;
    if ((rc = get_string(f[F_SIZE], "size", &str, err)) || (rc = check_size(str, model, err)))
        goto fail;
    if ((rc = get_word(f[F_RESPONSE_FORMAT], "response_format", formats, &word, err))) goto fail;
    out->want_url = word == 1;
    if ((rc = get_word(f[F_OUTPUT_FORMAT], "output_format", png, &word, err))) goto fail;
    /* accepted for compatibility, with no effect */
    if ((rc = get_string(f[F_QUALITY], "quality", &str, err)) ||
        (rc = get_string(f[F_STYLE], "style", &str, err)) ||
        (rc = get_string(f[F_USER], "user", &str, err)) ||
        (rc = get_string(f[F_VERSION], "edm_serve_version", &str, err)))
        goto fail;

    if ((rc = srv_image_load(&src, model->channels, model->resolution, &out->image, err)) ||
        (rc = check_hashes(f[F_INIT_IMAGE_SHA256], f[F_MASK_SHA256], &src, &out->image, err)))
        goto fail;
    /* img2img without a say: the default strength (inpainting runs the full schedule) */
    if (out->image.init_image && !out->image.mask && isnan(p->strength) && isnan(p->sigma_start))
        p->strength = EDM_IMG2IMG_DEFAULT_STRENGTH;
    free(owned[0]);
    free(owned[1]);
    return SRV_OK;

fail:
    free(owned[0]);
    free(owned[1]);
    srv_gen_request_clear(out);
    return rc;
}
