/*
 * model_random.c - configurations of the published networks, the edm_config JSON writer, and
 * random-weight models for benchmarks and tests.
 *
 * A random model goes through the same path as a file: the tensors of the network
 * description are laid out as an in-memory safetensors file and loaded by
 * edm_model_from_file, so a benchmark measures exactly what serving a real file runs.
 * Weights are N(0,1)/sqrt(fan_in), biases and norm parameters small perturbations; buffers
 * are computed as the official constructors do (resample filters, iDDPM's u table, Fourier
 * frequencies N(0,1)*16).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "model_config.h"
#include "status.h"

static const edm_config base_song = {
    .precond = EDM_PRECOND_EDM, .arch = EDM_ARCH_SONG, .img_resolution = 32, .img_channels = 3,
    .label_dim = 10, .sigma_min = 0, .sigma_max = INFINITY, .sigma_data = 0.5,
    .model_channels = 128, .channel_mult_emb = 4, .num_blocks = 4, .augment_dim = 9,
    .num_levels = 3, .channel_mult = {2, 2, 2}, .num_attn_res = 1, .attn_resolutions = {16},
    .dropout = 0.13, .embedding_type = EDM_EMBED_POSITIONAL, .channel_mult_noise = 1,
    .encoder_type = EDM_ENCODER_STANDARD, .decoder_type = EDM_DECODER_STANDARD,
    .resample_filter_len = 2, .resample_filter = {1, 1},
};

enum edm_status edm_config_preset(const char *name, edm_config *cfg, edm_error *err) {
    *cfg = base_song;
    if (strcmp(name, "cifar10-ddpmpp") == 0) return EDM_OK;
    if (strcmp(name, "cifar10-ncsnpp") == 0) {
        cfg->embedding_type = EDM_EMBED_FOURIER;
        cfg->channel_mult_noise = 2;
        cfg->encoder_type = EDM_ENCODER_RESIDUAL;
        cfg->resample_filter_len = 4;
        memcpy(cfg->resample_filter, (int[4]){1, 3, 3, 1}, sizeof cfg->resample_filter);
        return EDM_OK;
    }
    if (strcmp(name, "ffhq64-ddpmpp") == 0) {
        cfg->img_resolution = 64;
        cfg->label_dim = 0;
        cfg->dropout = 0.05;
        cfg->num_levels = 4;
        memcpy(cfg->channel_mult, (int[4]){1, 2, 2, 2}, 4 * sizeof(int));
        return EDM_OK;
    }
    if (strcmp(name, "imagenet64-adm") == 0) {
        cfg->arch = EDM_ARCH_DHARIWAL;
        cfg->img_resolution = 64;
        cfg->label_dim = 1000;
        cfg->use_fp16 = 1;
        cfg->model_channels = 192;
        cfg->num_blocks = 3;
        cfg->augment_dim = 0;
        cfg->dropout = 0.1;
        cfg->num_levels = 4;
        memcpy(cfg->channel_mult, (int[4]){1, 2, 3, 4}, 4 * sizeof(int));
        cfg->num_attn_res = 3;
        memcpy(cfg->attn_resolutions, (int[3]){32, 16, 8}, 3 * sizeof(int));
        return EDM_OK;
    }
    return edm_error_set(err, EDM_EINVAL,
                         "unknown preset '%s' (cifar10-ddpmpp, cifar10-ncsnpp, ffhq64-ddpmpp, "
                         "imagenet64-adm)",
                         name);
}

static json_t *num_or_inf(double v) {
    if (isinf(v)) return json_string(v > 0 ? "inf" : "-inf");
    if (v == floor(v) && fabs(v) < 1e15) return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *int_list(const int *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
    return a;
}

char *edm_config_to_json(const edm_config *c) {
    json_t *root = json_object(), *pk = json_object(), *mk = json_object();
    json_object_set_new(root, "format", json_string("edm-safetensors/1"));
    json_object_set_new(root, "precond", json_string(edm_precond_name(c->precond)));
    json_object_set_new(root, "model_type", json_string(edm_arch_name(c->arch)));
    json_object_set_new(root, "img_resolution", json_integer(c->img_resolution));
    json_object_set_new(root, "img_channels", json_integer(c->img_channels));
    json_object_set_new(root, "label_dim", json_integer(c->label_dim));
    json_object_set_new(root, "use_fp16", json_boolean(c->use_fp16));
    switch (c->precond) {
    case EDM_PRECOND_VP:
        json_object_set_new(pk, "beta_d", num_or_inf(c->beta_d));
        json_object_set_new(pk, "beta_min", num_or_inf(c->beta_min));
        json_object_set_new(pk, "M", num_or_inf(c->M));
        json_object_set_new(pk, "epsilon_t", num_or_inf(c->epsilon_t));
        break;
    case EDM_PRECOND_IDDPM:
        json_object_set_new(pk, "C_1", num_or_inf(c->C_1));
        json_object_set_new(pk, "C_2", num_or_inf(c->C_2));
        json_object_set_new(pk, "M", num_or_inf(c->M));
        break;
    case EDM_PRECOND_EDM: json_object_set_new(pk, "sigma_data", num_or_inf(c->sigma_data)); /* fallthrough */
    case EDM_PRECOND_VE:
        json_object_set_new(pk, "sigma_min", num_or_inf(c->sigma_min));
        json_object_set_new(pk, "sigma_max", num_or_inf(c->sigma_max));
        break;
    }
    json_object_set_new(mk, "model_channels", json_integer(c->model_channels));
    json_object_set_new(mk, "channel_mult", int_list(c->channel_mult, c->num_levels));
    json_object_set_new(mk, "channel_mult_emb", json_integer(c->channel_mult_emb));
    json_object_set_new(mk, "num_blocks", json_integer(c->num_blocks));
    json_object_set_new(mk, "attn_resolutions", int_list(c->attn_resolutions, c->num_attn_res));
    json_object_set_new(mk, "dropout", json_real(c->dropout));
    json_object_set_new(mk, "label_dropout", json_real(c->label_dropout));
    json_object_set_new(mk, "augment_dim", json_integer(c->augment_dim));
    if (c->arch == EDM_ARCH_SONG) {
        static const char *const emb[] = {"positional", "fourier"};
        static const char *const enc[] = {"standard", "skip", "residual"};
        static const char *const dec[] = {"standard", "skip"};
        json_object_set_new(mk, "embedding_type", json_string(emb[c->embedding_type]));
        json_object_set_new(mk, "channel_mult_noise", json_integer(c->channel_mult_noise));
        json_object_set_new(mk, "encoder_type", json_string(enc[c->encoder_type]));
        json_object_set_new(mk, "decoder_type", json_string(dec[c->decoder_type]));
        json_object_set_new(mk, "resample_filter",
                            int_list(c->resample_filter, c->resample_filter_len));
    }
    json_object_set_new(root, "precond_kwargs", pk);
    json_object_set_new(root, "model_kwargs", mk);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}

/* splitmix64 + Box-Muller: a private, deterministic generator for weights. */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double normal(uint64_t *s) {
    double u1 = ((mix(s) >> 11) + 0.5) / 9007199254740992.0, u2 = (mix(s) >> 11) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static void fill(const edm_config *cfg, const edm_param *p, float *dst, uint64_t *rng) {
    int64_t n = 1;
    for (int d = 0; d < p->ndim; d++) n *= p->shape[d];
    const char *leaf = strrchr(p->name, '.');
    leaf = leaf ? leaf + 1 : p->name;
    if (strcmp(leaf, "resample_filter") == 0) {
        int L = p->shape[2];
        double sum = 0;
        for (int i = 0; i < L; i++) sum += cfg->resample_filter[i];
        for (int i = 0; i < L; i++)
            for (int j = 0; j < L; j++)
                dst[i * L + j] = (float)cfg->resample_filter[i] * (float)cfg->resample_filter[j] /
                                 (float)(sum * sum);
    } else if (strcmp(p->name, "u") == 0) {
        /* The iDDPM recurrence (spec 2.3), fp32 as the constructor. */
        int M = (int)cfg->M;
        dst[M] = 0;
        for (int j = M; j > 0; j--) {
            float a0 = sinf((float)(0.5 * M_PI) * (float)(j - 1) / (float)M / (float)(cfg->C_2 + 1));
            float a1 = sinf((float)(0.5 * M_PI) * (float)j / (float)M / (float)(cfg->C_2 + 1));
            float ratio = (a0 * a0) / (a1 * a1);
            if (ratio < (float)cfg->C_1) ratio = (float)cfg->C_1;
            dst[j - 1] = sqrtf((dst[j] * dst[j] + 1) / ratio - 1);
        }
    } else if (strcmp(leaf, "freqs") == 0) {
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(normal(rng) * 16);
    } else if (strcmp(leaf, "weight") == 0 && p->ndim >= 2) {
        double fan_in = (double)n / p->shape[0];
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(normal(rng) / sqrt(fan_in));
    } else if (strcmp(leaf, "weight") == 0) { /* GroupNorm gamma */
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(1 + 0.1 * normal(rng));
    } else {
        for (int64_t i = 0; i < n; i++) dst[i] = (float)(0.1 * normal(rng));
    }
}

enum edm_status edm_model_new_random(const edm_config *cfg, uint64_t seed, edm_model **out,
                                     edm_error *err) {
    enum edm_status st;
    edm_net *net = NULL;
    char *cfg_json = NULL, *header = NULL;
    uint8_t *buf = NULL;
    json_t *h = NULL;
    *out = NULL;
    if ((st = edm_net_build(cfg, &net, err))) return st;
    cfg_json = edm_config_to_json(cfg);
    h = json_object();
    json_t *meta = json_object();
    json_object_set_new(meta, "edm_config", json_string(cfg_json ? cfg_json : ""));
    json_object_set_new(meta, "name", json_string("random"));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    for (int i = 0; i < net->n_params; i++) {
        const edm_param *p = &net->params[i];
        int64_t n = 1;
        json_t *shape = json_array();
        for (int d = 0; d < p->ndim; d++) {
            n *= p->shape[d];
            json_array_append_new(shape, json_integer(p->shape[d]));
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string("F32"));
        json_object_set_new(e, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + 4 * (uint64_t)n)));
        json_object_set_new(e, "data_offsets", offs);
        json_object_set_new(h, p->name, e);
        off += 4 * (uint64_t)n;
    }
    header = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!cfg_json || !header) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory");
        goto done;
    }
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    size_t total = 8 + padded + off;
    buf = malloc(total);
    if (!buf) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory for a %.1f MB random model", total / 1e6);
        goto done;
    }
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memset(buf + 8 + hlen, ' ', padded - hlen);
    uint64_t rng = seed * 0x2545F4914F6CDD1Dull + 1;
    float *data = (float *)(void *)(buf + 8 + padded); /* 8-aligned: malloc + 8 + padded */
    for (int i = 0; i < net->n_params; i++) {
        fill(cfg, &net->params[i], data, &rng);
        data += edm_tensor_numel(net->params[i].t);
    }
    edm_st_file *file = NULL;
    if ((st = edm_st_open_mem(buf, total, "random model", &file, err))) goto done;
    st = edm_model_from_file(file, "random model", out, err);
done:
    free(buf);
    free(header);
    free(cfg_json);
    json_decref(h);
    edm_net_free(net);
    return st;
}
