/*
 * denoiser.c - a model bound to a backend: weights, workspace, D(x; sigma) (spec 2.1).
 *
 * Binding uploads every tensor of the state dict into one backend allocation (conv weights
 * in the backend's activation dtype, everything else fp32). The workspace arena is sized
 * once for max_batch by running the same pass on the null backend, so evaluation allocates
 * nothing. One evaluation: coefficients on the host in fp32 from the fp32 sigma (precond.c),
 * upload x and the per-image coefficients, x_in = c_in*x, F = net(x_in, c_noise, labels),
 * D = c_skip*x + c_out*F, download D. The backend's sticky status is checked once at the end.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "precond.h"
#include "sampler/sampler.h"
#include "status.h"

struct edm_denoiser {
    const edm_model *model;
    edm_backend *b;
    edm_net *net; /* this binding's own description: its tensors point at backend memory */
    int max_batch;
    void *weights;
    edm_arena arena;
    float *coefs;  /* host [4][max_batch]: c_skip, c_out, c_in, c_noise */
    float *zeros;  /* host [max_batch * label_dim] for "no labels" */
    /* staging for edm_denoiser_step */
    float *step_x, *step_d, *step_labels;
    double *step_sigma;
    int *step_idx;
};

/* Uploads host inputs, runs the network and the preconditioner's output. With the null
 * backend (host pointers NULL) it only validates, counts and measures. */
static void denoise_graph(const edm_net *net, edm_backend *b, edm_arena *a, int n,
                          const float *x, const float *coefs, const float *labels,
                          const float *augment, float *out) {
    const edm_config *cfg = &net->cfg;
    const int C = cfg->img_channels, R = cfg->img_resolution;
    const int measuring = a->base == NULL;
    edm_arena_reset(a, 0);
    edm_tensor xt = edm_tensor_shape(n, C, R, R, EDM_F32);
    edm_tensor c[4];
    for (int k = 0; k < 4; k++) {
        c[k] = edm_tensor_shape(n, 1, 1, 1, EDM_F32);
        edm_arena_alloc(a, b, &c[k]);
    }
    edm_arena_alloc(a, b, &xt);
    edm_net_inputs in = {0};
    in.c_noise = c[3];
    if (net->has_label) {
        in.labels = edm_tensor_shape(n, cfg->label_dim, 1, 1, EDM_F32);
        edm_arena_alloc(a, b, &in.labels);
    }
    if (net->has_augment && (augment || measuring)) {
        in.augment = edm_tensor_shape(n, cfg->augment_dim, 1, 1, EDM_F32);
        edm_arena_alloc(a, b, &in.augment);
    }
    if (!measuring) {
        edm_op_upload_act(b, &xt, x); /* host NCHW -> the backend's layout */
        for (int k = 0; k < 4; k++) edm_op_upload(b, &c[k], coefs + (size_t)k * n);
        if (net->has_label) edm_op_upload(b, &in.labels, labels);
        if (in.augment.data) edm_op_upload(b, &in.augment, augment);
    }
    char msg[EDM_OPS_MSG] = "";
    /* forward_end must follow every forward_begin that succeeded, also after a failing op,
     * so a backend recording the pass (CUDA graphs) can discard it. */
    int began = 0;
    if (b->ops->forward_begin && !b->failed) {
        if (b->ops->forward_begin(b->ctx, n, msg)) edm_backend_fail(b, "forward_begin", "%s", msg);
        else began = b->ops->forward_end != NULL;
    }
    in.x = edm_tensor_shape(n, C, R, R, b->act_dtype);
    edm_arena_alloc(a, b, &in.x);
    edm_op_scale_rows(b, &in.x, &xt, &c[2]);
    edm_tensor F = edm_tensor_shape(n, net->out_channels, R, R, b->act_dtype);
    edm_arena_alloc(a, b, &F);
    edm_net_forward(net, b, a, &in, &F);
    edm_tensor D = edm_tensor_shape(n, C, R, R, EDM_F32);
    edm_arena_alloc(a, b, &D);
    edm_op_precond_out(b, &D, &xt, &F, &c[0], &c[1]);
    if (began && b->ops->forward_end(b->ctx, n, msg)) edm_backend_fail(b, "forward_end", "%s", msg);
    if (!measuring) edm_op_download_act(b, out, &D);
}

enum edm_status edm_denoiser_measure(const edm_net *net, int n, size_t *bytes, double *flops,
                                     edm_error *err) {
    edm_backend *nb = edm_backend_null_new();
    if (!nb) return edm_error_set(err, EDM_ENOMEM, "out of memory");
    edm_arena a = {0};
    denoise_graph(net, nb, &a, n, NULL, NULL, NULL, NULL, NULL);
    enum edm_status st = EDM_OK;
    if (nb->failed) st = edm_error_set(err, EDM_EFORMAT, "network check failed: %s", nb->message);
    *bytes = a.peak;
    *flops = nb->flops;
    edm_backend_free(nb);
    return st;
}

static size_t align_up(size_t v) {
    return (v + EDM_ARENA_ALIGN - 1) & ~(size_t)(EDM_ARENA_ALIGN - 1);
}

/* Uploads every tensor of the state dict (plus the positional frequencies) into one buffer. */
static enum edm_status bind_weights(edm_denoiser *d, edm_error *err) {
    edm_net *net = d->net;
    edm_backend *b = d->b;
    size_t total = 0, max_numel = (size_t)net->freqs.n;
    for (int i = 0; i < net->n_params; i++) {
        edm_param *p = &net->params[i];
        p->t->dtype = p->act_dtype ? b->act_dtype : EDM_F32;
        size_t numel = (size_t)edm_tensor_numel(p->t);
        total += align_up(numel * edm_dtype_size(p->t->dtype));
        if (numel > max_numel) max_numel = numel;
    }
    if (net->positional_freqs) total += align_up(sizeof(float) * (size_t)net->freqs.n);
    d->weights = b->ops->alloc(b->ctx, total ? total : 1);
    if (!d->weights)
        return edm_error_set(err, EDM_ENOMEM, "cannot allocate %.1f MB for the weights on %s",
                             total / 1e6, b->description);
    float *host = malloc(sizeof(float) * max_numel);
    if (!host) return edm_error_set(err, EDM_ENOMEM, "out of memory staging weights");
    enum edm_status st = EDM_OK;
    size_t off = 0;
    for (int i = 0; i < net->n_params && !st; i++) {
        edm_param *p = &net->params[i];
        size_t numel = (size_t)edm_tensor_numel(p->t);
        p->t->data = (char *)d->weights + off;
        off += align_up(numel * edm_dtype_size(p->t->dtype));
        const edm_st_tensor *t = edm_st_find(d->model->file, p->name);
        st = edm_st_read_f32(d->model->file, t, host, numel, err);
        if (st) break;
        if (p->fourier_freqs) {
            /* The reference forms 2*pi*freqs in fp32 before the outer product. */
            const float two_pi = (float)(2.0 * M_PI);
            for (size_t k = 0; k < numel; k++) host[k] = two_pi * host[k];
        }
        edm_op_upload(b, p->t, host);
    }
    if (!st && net->positional_freqs) {
        net->freqs.data = (char *)d->weights + off;
        edm_op_upload(b, &net->freqs, net->positional_freqs);
    }
    free(host);
    if (!st && b->failed) {
        st = edm_error_set(err, EDM_EDEVICE, "uploading weights: %s", b->message);
        edm_backend_clear(b);
    }
    return st;
}

enum edm_status edm_denoiser_new(const edm_model *model, edm_backend *b, int max_batch,
                                 edm_denoiser **out, edm_error *err) {
    enum edm_status st;
    *out = NULL;
    if (max_batch < 1 || max_batch > 65536)
        return edm_error_set(err, EDM_EINVAL, "max_batch %d is out of range [1, 65536]", max_batch);
    edm_denoiser *d = calloc(1, sizeof *d);
    if (!d) return edm_error_set(err, EDM_ENOMEM, "out of memory");
    d->model = model;
    d->b = b;
    d->max_batch = max_batch;
    const edm_config *cfg = &model->cfg;
    size_t img = (size_t)cfg->img_channels * cfg->img_resolution * cfg->img_resolution;
    if ((st = edm_net_build(cfg, &d->net, err))) goto fail;
    if ((st = bind_weights(d, err))) goto fail;

    /* Size the workspace for max_batch on the null backend (same ops, same dtypes). */
    edm_backend *nb = edm_backend_null_new();
    if (!nb) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory");
        goto fail;
    }
    nb->act_dtype = b->act_dtype;
    edm_arena probe = {0};
    denoise_graph(d->net, nb, &probe, max_batch, NULL, NULL, NULL, NULL, NULL);
    int probe_failed = nb->failed;
    edm_backend_free(nb);
    if (probe_failed) {
        st = edm_error_set(err, EDM_EFORMAT, "network check failed");
        goto fail;
    }
    d->arena.size = probe.peak;
    d->arena.base = b->ops->alloc(b->ctx, probe.peak ? probe.peak : 1);
    if (!d->arena.base) {
        size_t per_image = probe.peak / (size_t)max_batch;
        size_t avail = 0;
        if (b->ops->mem_info && b->ops->mem_info(b->ctx, &avail, NULL)) avail = 0;
        char fits[128] = "lower the batch size";
        if (avail && per_image)
            snprintf(fits, sizeof fits, "%.1f MB are free, so the largest batch that fits is about %zu",
                     avail / 1e6, avail / per_image);
        st = edm_error_set(err, EDM_ENOMEM,
                           "cannot allocate a %.1f MB workspace for batch %d on %s "
                           "(about %.1f MB per image): %s",
                           probe.peak / 1e6, max_batch, b->description, per_image / 1e6, fits);
        goto fail;
    }
    d->coefs = malloc(sizeof(float) * 4 * (size_t)max_batch);
    d->zeros = calloc((size_t)max_batch * (size_t)(cfg->label_dim ? cfg->label_dim : 1),
                      sizeof(float));
    d->step_x = malloc(sizeof(float) * img * (size_t)max_batch);
    d->step_d = malloc(sizeof(float) * img * (size_t)max_batch);
    d->step_labels = calloc((size_t)max_batch * (size_t)(cfg->label_dim ? cfg->label_dim : 1),
                            sizeof(float));
    d->step_sigma = malloc(sizeof(double) * (size_t)max_batch);
    d->step_idx = malloc(sizeof(int) * (size_t)max_batch);
    if (!d->coefs || !d->zeros || !d->step_x || !d->step_d || !d->step_labels || !d->step_sigma ||
        !d->step_idx) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory");
        goto fail;
    }
    *out = d;
    return EDM_OK;
fail:
    edm_denoiser_free(d);
    return st;
}

void edm_denoiser_free(edm_denoiser *d) {
    if (!d) return;
    if (d->b->ops->sync) {
        char msg[EDM_OPS_MSG];
        d->b->ops->sync(d->b->ctx, msg);
    }
    if (d->weights) d->b->ops->free(d->b->ctx, d->weights);
    if (d->arena.base) d->b->ops->free(d->b->ctx, d->arena.base);
    edm_net_free(d->net);
    free(d->coefs);
    free(d->zeros);
    free(d->step_x);
    free(d->step_d);
    free(d->step_labels);
    free(d->step_sigma);
    free(d->step_idx);
    free(d);
}

int edm_denoiser_max_batch(const edm_denoiser *d) {
    return d->max_batch;
}
const edm_model *edm_denoiser_model(const edm_denoiser *d) {
    return d->model;
}

enum edm_status edm_denoiser_eval(edm_denoiser *d, int n, const float *x, const double *sigma,
                                  const float *labels, const float *augment, float *out,
                                  edm_error *err) {
    const edm_model *m = d->model;
    edm_backend *b = d->b;
    if (n < 1 || n > d->max_batch)
        return edm_error_set(err, EDM_EINVAL, "batch of %d images; this denoiser takes 1..%d", n,
                             d->max_batch);
    if (b->device_lost)
        return edm_error_set(err, EDM_EDEVICE, "the device failed earlier: %s", b->message);
    for (int i = 0; i < n; i++) {
        float s = (float)sigma[i]; /* the net always sees sigma rounded to fp32 */
        if (!(s > 0) || !isfinite(s))
            return edm_error_set(err, EDM_EINVAL, "sigma[%d] = %g must be positive and finite", i,
                                 sigma[i]);
        edm_precond_coefs c;
        edm_precond_coefs_compute(&m->cfg, m->u, m->u_len, s, &c);
        d->coefs[i] = c.c_skip;
        d->coefs[n + i] = c.c_out;
        d->coefs[2 * n + i] = c.c_in;
        d->coefs[3 * n + i] = c.c_noise;
    }
    if (m->cfg.label_dim && !labels) labels = d->zeros;
    denoise_graph(d->net, b, &d->arena, n, x, d->coefs, labels, augment, out);
    if (!b->failed && b->ops->sync) {
        char msg[EDM_OPS_MSG] = "";
        if (b->ops->sync(b->ctx, msg)) edm_backend_fail(b, "sync", "%s", msg);
    }
    if (b->failed) {
        enum edm_status st = edm_error_set(
            err, b->device_lost ? EDM_EDEVICE : EDM_EINVAL, "denoiser: %s", b->message);
        edm_backend_clear(b);
        return st;
    }
    return EDM_OK;
}

/* Index of the first non-finite value of x[0..n), or -1. */
static ptrdiff_t first_non_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return (ptrdiff_t)i;
    return -1;
}

enum edm_status edm_denoiser_step(edm_denoiser *d, edm_sample *const *samples, int n,
                                  int *evaluated, edm_error *err) {
    const edm_config *cfg = &d->model->cfg;
    const size_t img = (size_t)cfg->img_channels * cfg->img_resolution * cfg->img_resolution;
    int *idx = d->step_idx, k = 0;
    *evaluated = 0;
    /* Gather up to max_batch pending samples, whatever their step or plan. An image whose
     * own input is unusable fails here, alone, instead of failing the batch's evaluation. */
    for (int i = 0; i < n && k < d->max_batch; i++) {
        if (!edm_sample_pending(samples[i])) continue;
        float *x = d->step_x + img * (size_t)k;
        edm_sample_next_input(samples[i], x, &d->step_sigma[k]);
        const float s = (float)d->step_sigma[k];
        if (!(s > 0) || !isfinite(s)) {
            edm_sample_fail(samples[i], EDM_EINVAL,
                            "step %d: the noise level %g is not a positive finite fp32 value",
                            edm_sample_step(samples[i]), d->step_sigma[k]);
            continue;
        }
        ptrdiff_t bad = first_non_finite(x, img);
        if (bad >= 0) {
            edm_sample_fail(samples[i], EDM_EINVAL,
                            "step %d: the network input is not finite (value %td is %g)",
                            edm_sample_step(samples[i]), bad, (double)x[bad]);
            continue;
        }
        if (cfg->label_dim) {
            float *row = d->step_labels + (size_t)k * cfg->label_dim;
            memset(row, 0, sizeof(float) * (size_t)cfg->label_dim);
            int label = edm_sample_class_label(samples[i]);
            if (label >= 0 && label < cfg->label_dim) row[label] = 1.0f;
        }
        idx[k++] = i;
    }
    enum edm_status st = EDM_OK;
    if (k > 0) {
        st = edm_denoiser_eval(d, k, d->step_x, d->step_sigma,
                               cfg->label_dim ? d->step_labels : NULL, NULL, d->step_d, err);
        for (int j = 0; j < k && !st; j++) {
            const float *D = d->step_d + img * (size_t)j;
            edm_sample *s = samples[idx[j]];
            ptrdiff_t bad = first_non_finite(D, img);
            if (bad >= 0)
                edm_sample_fail(s, EDM_EINVAL,
                                "step %d: the network's output for this image is not finite "
                                "(value %td is %g at sigma %g)",
                                edm_sample_step(s), bad, (double)D[bad], d->step_sigma[j]);
            else
                edm_sample_advance(s, D);
        }
    }
    if (!st) *evaluated = k;
    return st;
}
