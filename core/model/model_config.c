/*
 * model_config.c - the edm_config JSON (spec 0) into an edm_config struct.
 *
 * The header of a model file is untrusted input: every field is checked for presence, type
 * and range before anything is sized from it. Infinite values arrive as the strings "inf" /
 * "-inf". Unknown keys are ignored (newer writers may add some); missing required ones are
 * errors naming the key.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "model_config.h"
#include "status.h"

static const char *const precond_names[] = {"vp", "ve", "iddpm", "edm"};
static const char *const arch_names[] = {"SongUNet", "DhariwalUNet"};

const char *edm_precond_name(enum edm_precond p) {
    return (unsigned)p < 4 ? precond_names[p] : "unknown";
}
const char *edm_arch_name(enum edm_arch a) {
    return (unsigned)a < 2 ? arch_names[a] : "unknown";
}

/* A number, or "inf"/"-inf". */
static enum edm_status get_num(json_t *obj, const char *where, const char *key, int required,
                               double def, double *out, edm_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s is missing", where, key);
        *out = def;
        return EDM_OK;
    }
    if (json_is_number(v)) *out = json_number_value(v);
    else if (json_is_string(v) && strcmp(json_string_value(v), "inf") == 0) *out = INFINITY;
    else if (json_is_string(v) && strcmp(json_string_value(v), "-inf") == 0) *out = -INFINITY;
    else return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s must be a number", where, key);
    if (isnan(*out))
        return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s is NaN", where, key);
    return EDM_OK;
}

static enum edm_status get_int(json_t *obj, const char *where, const char *key, int required,
                               int def, int lo, int hi, int *out, edm_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s is missing", where, key);
        *out = def;
        return EDM_OK;
    }
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
    else if (json_is_boolean(v)) d = json_is_true(v);
    else return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s must be an integer", where, key);
    if (d < lo || d > hi)
        return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s = %g is out of range [%d, %d]",
                             where, key, d, lo, hi);
    *out = (int)d;
    return EDM_OK;
}

static enum edm_status get_int_list(json_t *obj, const char *where, const char *key, int max_n,
                                    int lo, int hi, int *vals, int *n, edm_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s is missing", where, key);
    if (!json_is_array(v))
        return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s must be a list", where, key);
    if ((int)json_array_size(v) > max_n)
        return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s has more than %d entries",
                             where, key, max_n);
    *n = (int)json_array_size(v);
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi)
            return edm_error_set(err, EDM_EFORMAT,
                                 "edm_config: %s.%s[%d] must be an integer in [%d, %d]", where,
                                 key, i, lo, hi);
        vals[i] = (int)json_integer_value(e);
    }
    return EDM_OK;
}

static enum edm_status get_enum(json_t *obj, const char *where, const char *key,
                                const char *const *names, int count, int *out, edm_error *err) {
    json_t *v = json_object_get(obj, key);
    if (!v) return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s is missing", where, key);
    if (json_is_string(v))
        for (int i = 0; i < count; i++)
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *out = i;
                return EDM_OK;
            }
    return edm_error_set(err, EDM_EFORMAT, "edm_config: %s.%s has an unknown value", where, key);
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((st = (x)) != EDM_OK) goto done;                                                   \
    } while (0)

static enum edm_status parse_precond(json_t *pk, edm_config *c, edm_error *err) {
    enum edm_status st = EDM_OK;
    const char *w = "precond_kwargs";
    switch (c->precond) {
    case EDM_PRECOND_VP:
        TRY(get_num(pk, w, "beta_d", 1, 0, &c->beta_d, err));
        TRY(get_num(pk, w, "beta_min", 1, 0, &c->beta_min, err));
        TRY(get_num(pk, w, "M", 1, 0, &c->M, err));
        TRY(get_num(pk, w, "epsilon_t", 1, 0, &c->epsilon_t, err));
        if (!(c->beta_d > 0 && isfinite(c->beta_d) && c->beta_min >= 0 && isfinite(c->beta_min) &&
              c->M >= 2 && c->M <= 1e6 && c->epsilon_t > 0 && c->epsilon_t < 1))
            return edm_error_set(err, EDM_EFORMAT, "edm_config: VP parameters out of range");
        break;
    case EDM_PRECOND_VE:
    case EDM_PRECOND_EDM:
        TRY(get_num(pk, w, "sigma_min", 1, 0, &c->sigma_min, err));
        TRY(get_num(pk, w, "sigma_max", 1, 0, &c->sigma_max, err));
        if (c->precond == EDM_PRECOND_EDM) TRY(get_num(pk, w, "sigma_data", 1, 0, &c->sigma_data, err));
        if (!(c->sigma_min >= 0 && c->sigma_max > c->sigma_min) ||
            (c->precond == EDM_PRECOND_EDM && !(c->sigma_data > 0 && isfinite(c->sigma_data))))
            return edm_error_set(err, EDM_EFORMAT, "edm_config: sigma range out of range");
        break;
    case EDM_PRECOND_IDDPM:
        TRY(get_num(pk, w, "C_1", 1, 0, &c->C_1, err));
        TRY(get_num(pk, w, "C_2", 1, 0, &c->C_2, err));
        TRY(get_num(pk, w, "M", 1, 0, &c->M, err));
        if (!(c->M >= 2 && c->M <= 1e6 && floor(c->M) == c->M))
            return edm_error_set(err, EDM_EFORMAT, "edm_config: iddpm M out of range");
        break;
    }
done:
    return st;
}

static enum edm_status parse_model(json_t *mk, edm_config *c, edm_error *err) {
    enum edm_status st = EDM_OK;
    const char *w = "model_kwargs";
    TRY(get_int(mk, w, "model_channels", 1, 0, 2, 8192, &c->model_channels, err));
    TRY(get_int_list(mk, w, "channel_mult", EDM_MAX_LEVELS, 1, 256, c->channel_mult,
                     &c->num_levels, err));
    if (c->num_levels < 1)
        return edm_error_set(err, EDM_EFORMAT, "edm_config: model_kwargs.channel_mult is empty");
    TRY(get_int(mk, w, "channel_mult_emb", 1, 0, 1, 64, &c->channel_mult_emb, err));
    TRY(get_int(mk, w, "num_blocks", 1, 0, 1, 64, &c->num_blocks, err));
    TRY(get_int_list(mk, w, "attn_resolutions", EDM_MAX_ATTN_RES, 1, 1 << 16, c->attn_resolutions,
                     &c->num_attn_res, err));
    TRY(get_int(mk, w, "augment_dim", 0, 0, 0, 1 << 16, &c->augment_dim, err));
    TRY(get_num(mk, w, "dropout", 0, 0, &c->dropout, err));
    TRY(get_num(mk, w, "label_dropout", 0, 0, &c->label_dropout, err));
    if (c->arch == EDM_ARCH_SONG) {
        static const char *const emb[] = {"positional", "fourier"};
        static const char *const enc[] = {"standard", "skip", "residual"};
        static const char *const dec[] = {"standard", "skip"};
        int e;
        TRY(get_enum(mk, w, "embedding_type", emb, 2, &e, err));
        c->embedding_type = (enum edm_embedding)e;
        TRY(get_enum(mk, w, "encoder_type", enc, 3, &e, err));
        c->encoder_type = (enum edm_encoder)e;
        TRY(get_enum(mk, w, "decoder_type", dec, 2, &e, err));
        c->decoder_type = (enum edm_decoder)e;
        TRY(get_int(mk, w, "channel_mult_noise", 1, 0, 1, 64, &c->channel_mult_noise, err));
        TRY(get_int_list(mk, w, "resample_filter", 4, 0, 1 << 16, c->resample_filter,
                         &c->resample_filter_len, err));
        if (c->resample_filter_len < 1)
            return edm_error_set(err, EDM_EFORMAT, "edm_config: resample_filter is empty");
    } else {
        c->resample_filter_len = 2;
        c->resample_filter[0] = c->resample_filter[1] = 1;
    }
done:
    return st;
}

enum edm_status edm_config_parse(const char *text, size_t len, edm_config *c, edm_error *err) {
    enum edm_status st = EDM_OK;
    json_error_t jerr;
    memset(c, 0, sizeof *c);
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return edm_error_set(err, EDM_EFORMAT, "edm_config is not valid JSON: %s (line %d)",
                             jerr.text, jerr.line);
    if (!json_is_object(root)) {
        st = edm_error_set(err, EDM_EFORMAT, "edm_config must be a JSON object");
        goto done;
    }
    json_t *fmt = json_object_get(root, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "edm-safetensors/1") != 0) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "edm_config.format must be \"edm-safetensors/1\"");
        goto done;
    }
    int e;
    TRY(get_enum(root, "edm_config", "precond", precond_names, 4, &e, err));
    c->precond = (enum edm_precond)e;
    TRY(get_enum(root, "edm_config", "model_type", arch_names, 2, &e, err));
    c->arch = (enum edm_arch)e;
    TRY(get_int(root, "edm_config", "img_resolution", 1, 0, 1, 4096, &c->img_resolution, err));
    TRY(get_int(root, "edm_config", "img_channels", 1, 0, 1, 4, &c->img_channels, err));
    TRY(get_int(root, "edm_config", "label_dim", 1, 0, 0, 100000, &c->label_dim, err));
    TRY(get_int(root, "edm_config", "use_fp16", 0, 0, 0, 1, &c->use_fp16, err));
    json_t *pk = json_object_get(root, "precond_kwargs");
    json_t *mk = json_object_get(root, "model_kwargs");
    if (!json_is_object(pk) || !json_is_object(mk)) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "edm_config needs objects precond_kwargs and model_kwargs");
        goto done;
    }
    TRY(parse_precond(pk, c, err));
    TRY(parse_model(mk, c, err));
    /* Every level halves the resolution exactly. */
    int R = c->img_resolution, L = c->num_levels;
    if (L > 1 && (R % (1 << (L - 1)) != 0)) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "edm_config: img_resolution %d is not divisible by 2^%d for %d levels",
                           R, L - 1, L);
        goto done;
    }
done:
    json_decref(root);
    return st;
}
