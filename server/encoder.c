/*
 * encoder.c - PNG encoding threads.
 *
 * Sampling ends on the worker; turning x into uint8 and PNG happens here so that the worker
 * goes straight back to the device (DESIGN.md: keep the GPU busy). The encoder owns the
 * job's samples while it encodes, frees them afterwards (a finished job keeps only its
 * PNGs: a 64x64x3 sample holds ~0.5 MB of fp64 state), and then completes the job, unless
 * it was cancelled or expired meanwhile.
 *
 * PNG text per image (edm_sample_png, the same as `edm sample` writes): Software, Model, Seed,
 * Class, Steps, Sampler (every sampler setting, edm_plan_describe) and Request, the resolved
 * settings as JSON that POSTed back makes the same pixels, so an image says how to make it
 * again; from an image, with the SHA-256 of the init image and mask files it names (the
 * request sends them again), and a variation's seed and strength.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"
#include "util.h"

static struct srv_image_result *encode_job(struct srv_job *job, int level, struct srv_error *err) {
    struct srv_image_result *res = calloc((size_t)job->n, sizeof *res);
    if (!res) {
        srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory encoding images");
        return NULL;
    }
    const edm_png_info info = {.software = "edm-serve edmd " EDM_VERSION,
                               .model = job->model->name,
                               .model_sha256 = edm_model_sha256(job->model->model),
                               .level = level,
                               .init_image_sha256 = job->req.image.init_sha256,
                               .mask_sha256 = job->req.image.mask_sha256,
                               .variation_seed = job->req.variation_seed,
                               .variation_strength = job->req.variation_strength};
    for (int i = 0; i < job->n; i++) {
        const edm_sample *s = job->samples[i];
        struct srv_image_result *r = &res[i];
        r->seed = edm_sample_seed(s);
        r->class_label = edm_sample_class_label(s);
        r->nfe = edm_sample_nfe_done(s);
        edm_error eerr;
        if (edm_sample_png(job->plan, s, &info, &r->png, &r->png_len, &eerr) != EDM_OK) {
            srv_error_set(err, SRV_E_INTERNAL, NULL, "PNG encoding failed: %s", eerr.message);
            for (int k = 0; k < i; k++) free(res[k].png);
            free(res);
            return NULL;
        }
    }
    return res;
}

void *srv_encoder_main(void *arg) {
    (void)arg;
    struct srv_sched *g = &srv_sched_g;
    pthread_setname_np(pthread_self(), "edmd-encode");
    pthread_mutex_lock(&g->lock);
    for (;;) {
        while (!g->stopping && !g->encode_queue.head) pthread_cond_wait(&g->encode, &g->lock);
        if (g->stopping) break;
        struct srv_job *job = srv_job_list_pop(&g->encode_queue); /* its reference is ours now */
        if (srv_job_state_terminal(job->state)) {
            srv_job_unref(job);
            continue;
        }
        pthread_mutex_unlock(&g->lock);
        struct srv_error err;
        uint64_t t0 = srv_now_ns();
        struct srv_image_result *res = encode_job(job, g->opts.png_level, &err);
        uint64_t t1 = srv_now_ns();
        for (int i = 0; i < job->n; i++) { /* no one else reads the samples after sampling */
            edm_sample_free(job->samples[i]);
            job->samples[i] = NULL;
        }
        pthread_mutex_lock(&g->lock);
        if (job->state == SRV_JOB_RUNNING && res) {
            job->results = res;
            job->encode_ms = srv_ms_between(t0, t1);
            job->t_encoded = t1;
            srv_sched_finish(job, SRV_JOB_COMPLETED, NULL);
        } else {
            if (job->state == SRV_JOB_RUNNING) srv_sched_finish(job, SRV_JOB_FAILED, &err);
            if (res)
                for (int i = 0; i < job->n; i++) free(res[i].png);
            free(res);
        }
        srv_job_unref(job);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}
