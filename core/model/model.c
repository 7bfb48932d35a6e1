/*
 * model.c - loading a model file: configuration, validation, noise range (spec 0, 2).
 *
 * The file is read whole (safetensors.c validates the container), the configuration is
 * parsed (model_config.c), and the network description built from it (net_*.c) lists every
 * tensor the official state_dict has. Each must be in the file with exactly that shape, and
 * the file must hold nothing else, before anything is computed from the weights.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/sha256.h"
#include "model.h"
#include "model_config.h"
#include "precond.h"
#include "status.h"

static enum edm_status validate_tensors(const edm_model *m, edm_error *err) {
    const edm_net *net = m->net;
    for (int i = 0; i < net->n_params; i++) {
        const edm_param *p = &net->params[i];
        const edm_st_tensor *t = edm_st_find(m->file, p->name);
        if (!t)
            return edm_error_set(err, EDM_EFORMAT, "tensor '%s' is missing from the model file",
                                 p->name);
        int ok = t->ndim == p->ndim;
        for (int d = 0; ok && d < p->ndim; d++) ok = t->shape[d] == p->shape[d];
        if (!ok) {
            char want[64], got[64];
            int k = 0;
            for (int d = 0; d < p->ndim; d++)
                k += snprintf(want + k, sizeof want - (size_t)k, "%s%d", d ? "," : "", p->shape[d]);
            k = 0;
            for (int d = 0; d < t->ndim && k < (int)sizeof got - 16; d++)
                k += snprintf(got + k, sizeof got - (size_t)k, "%s%lld", d ? "," : "",
                              (long long)t->shape[d]);
            if (t->ndim == 0) snprintf(got, sizeof got, "scalar");
            return edm_error_set(err, EDM_EFORMAT,
                                 "tensor '%s' has shape [%s], the configuration needs [%s]",
                                 p->name, got, want);
        }
    }
    if (edm_st_count(m->file) != net->n_params) {
        for (int i = 0; i < edm_st_count(m->file); i++) {
            const char *name = edm_st_at(m->file, i)->name;
            int known = 0;
            for (int j = 0; j < net->n_params && !known; j++)
                known = strcmp(net->params[j].name, name) == 0;
            if (!known)
                return edm_error_set(err, EDM_EFORMAT,
                                     "tensor '%s' is not part of the configured network", name);
        }
    }
    return EDM_OK;
}

static enum edm_status load_noise_range(edm_model *m, edm_error *err) {
    const edm_config *c = &m->cfg;
    switch (c->precond) {
    case EDM_PRECOND_VP:
        /* The reference derives these attributes in fp32 (spec 2.1). */
        m->sigma_min = edm_precond_vp_sigma_f32(c, c->epsilon_t);
        m->sigma_max = edm_precond_vp_sigma_f32(c, 1.0);
        break;
    case EDM_PRECOND_VE:
    case EDM_PRECOND_EDM:
        m->sigma_min = c->sigma_min;
        m->sigma_max = c->sigma_max;
        break;
    case EDM_PRECOND_IDDPM: {
        const edm_st_tensor *t = edm_st_find(m->file, "u");
        m->u_len = (int)c->M + 1;
        m->u = malloc(sizeof(float) * (size_t)m->u_len);
        if (!m->u) return edm_error_set(err, EDM_ENOMEM, "out of memory");
        enum edm_status st = edm_st_read_f32(m->file, t, m->u, (size_t)m->u_len, err);
        if (st) return st;
        for (int j = 0; j < m->u_len; j++)
            if (!isfinite(m->u[j]) || m->u[j] < 0 || (j > 0 && m->u[j] > m->u[j - 1]))
                return edm_error_set(err, EDM_EFORMAT,
                                     "tensor 'u' must be finite, non-negative and decreasing "
                                     "(entry %d is %g)", j, (double)m->u[j]);
        m->sigma_min = m->u[m->u_len - 2];
        m->sigma_max = m->u[0];
        break;
    }
    }
    return EDM_OK;
}

enum edm_status edm_model_from_file(edm_st_file *file, const char *what, edm_model **out,
                                    edm_error *err) {
    enum edm_status st;
    *out = NULL;
    edm_model *m = calloc(1, sizeof *m);
    if (!m) {
        edm_st_close(file);
        return edm_error_set(err, EDM_ENOMEM, "out of memory loading %s", what);
    }
    m->file = file;
    const char *cfg_json = edm_st_metadata(m->file, "edm_config");
    if (!cfg_json) {
        st = edm_error_set(err, EDM_EFORMAT,
                           "no __metadata__.edm_config (not an edm-safetensors/1 model file)");
        goto fail;
    }
    if ((st = edm_config_parse(cfg_json, strlen(cfg_json), &m->cfg, err))) goto fail;
    if ((st = edm_net_build(&m->cfg, &m->net, err))) goto fail;
    if ((st = validate_tensors(m, err))) goto fail;
    if ((st = load_noise_range(m, err))) goto fail;
    for (int i = 0; i < m->net->n_params; i++) {
        const edm_param *p = &m->net->params[i];
        if (strstr(p->name, "resample_filter") || strcmp(p->name, "u") == 0 ||
            strstr(p->name, "map_noise.freqs"))
            continue; /* buffers, not parameters */
        int64_t n = 1;
        for (int d = 0; d < p->ndim; d++) n *= p->shape[d];
        m->param_count += n;
    }
    if ((st = edm_denoiser_measure(m->net, 1, &m->workspace_per_image, &m->flops_per_image, err)))
        goto fail;
    size_t len;
    const void *bytes = edm_st_bytes(m->file, &len);
    edm_sha256_hex(bytes, len, m->sha256);
    *out = m;
    return EDM_OK;
fail:
    if (err) {
        char msg[sizeof err->message];
        memcpy(msg, err->message, sizeof msg);
        edm_error_set(err, st, "%s: %.400s", what, msg);
    }
    edm_model_free(m);
    return st;
}

enum edm_status edm_model_load(const char *path, edm_model **out, edm_error *err) {
    edm_st_file *file = NULL;
    *out = NULL;
    enum edm_status st = edm_st_open(path, &file, err);
    if (st) return st;
    return edm_model_from_file(file, path, out, err);
}

void edm_model_free(edm_model *m) {
    if (!m) return;
    edm_net_free(m->net);
    edm_st_close(m->file);
    free(m->u);
    free(m);
}

const edm_config *edm_model_config(const edm_model *m) {
    return &m->cfg;
}
const char *edm_model_metadata(const edm_model *m, const char *key) {
    return edm_st_metadata(m->file, key);
}
const char *edm_model_sha256(const edm_model *m) {
    return m->sha256;
}
int64_t edm_model_param_count(const edm_model *m) {
    return m->param_count;
}
double edm_model_flops_per_image(const edm_model *m) {
    return m->flops_per_image;
}
size_t edm_model_workspace_bytes_per_image(const edm_model *m) {
    return m->workspace_per_image;
}
double edm_model_sigma_min(const edm_model *m) {
    return m->sigma_min;
}
double edm_model_sigma_max(const edm_model *m) {
    return m->sigma_max;
}
int edm_model_sigma_usable(const edm_model *m, double sigma) {
    const float s = (float)sigma;
    /* Every preconditioner squares sigma in fp32 (as the reference does), and a square that
     * overflows turns the coefficients into silent zeros; the input x is sigma times N(0,1)
     * values below 8 in magnitude (Box-Muller on 32-bit uniforms). */
    if (!(s > 0) || !isfinite(s * s) || !isfinite(s * 16.0f)) return 0;
    edm_precond_coefs c;
    edm_precond_coefs_compute(&m->cfg, m->u, m->u_len, s, &c);
    return isfinite(c.c_skip) && isfinite(c.c_out) && isfinite(c.c_in) && isfinite(c.c_noise);
}

double edm_model_round_sigma(const edm_model *m, double sigma) {
    if (m->cfg.precond != EDM_PRECOND_IDDPM) return sigma;
    return (double)m->u[edm_precond_iddpm_index(m->u, m->u_len, (float)sigma)];
}
