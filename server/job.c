/*
 * job.c - creating, freeing and describing jobs (job.h).
 *
 * A job's plan is made per job: plans are cheap (a table of N+1 step coefficients) and a
 * private plan keeps ownership simple. Every image is an edm_sample seeded by its own seed,
 * so the worker may put it in any batch without changing the result.
 */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static const char *const state_names[] = {"queued", "running", "completed", "failed", "cancelled"};

const char *srv_job_state_name(enum srv_job_state s) {
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "failed";
}

static void job_free(struct srv_job *job) {
    if (job->samples)
        for (int i = 0; i < job->n; i++) edm_sample_free(job->samples[i]);
    free(job->samples);
    edm_plan_free(job->plan);
    if (job->results)
        for (int i = 0; i < job->n; i++) free(job->results[i].png);
    free(job->results);
    free(job->nfe_at_step);
    free(job->image_done);
    free(job->image_read);
    free(job->view_model);
    srv_gen_request_clear(&job->req);
    free(job);
}

/* The per-image and per-step arrays every job has. */
static int job_alloc_arrays(struct srv_job *job) {
    job->image_done = calloc((size_t)job->n, sizeof *job->image_done);
    job->image_read = calloc((size_t)job->n, sizeof *job->image_read);
    job->nfe_at_step = calloc((size_t)job->steps + 1, sizeof *job->nfe_at_step);
    return job->image_done && job->image_read && job->nfe_at_step ? 0 : -1;
}

enum srv_err srv_job_new(struct srv_gen_request *req, const struct srv_model *model, int model_index,
                         int async, long timeout_ms, struct srv_job **out, struct srv_error *err) {
    edm_error eerr;
    enum srv_err rc = SRV_OK;
    *out = NULL;
    struct srv_job *job = calloc(1, sizeof *job);
    if (!job) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
    atomic_init(&job->refs, 1);
    job->req = *req;
    memset(req, 0, sizeof *req);
    srv_random_id(async ? "job_" : "gen_", job->id, sizeof job->id);
    job->async = async;
    job->model = model;
    job->model_index = model_index;
    job->n = job->req.n;
    job->created = srv_unix_time();
    job->t_received = srv_now_ns();
    job->deadline = job->t_received + (uint64_t)timeout_ms * 1000000u;
    job->state = SRV_JOB_QUEUED;

    if (edm_plan_new(model->model, &job->req.params, &job->plan, &eerr) != EDM_OK) {
        /* the parameters passed validation, so this is a combination the model refuses
         * (for example a sigma range outside the network's) */
        rc = srv_error_set(err, eerr.status == EDM_ENOMEM ? SRV_E_INTERNAL : SRV_E_INVALID_PARAM,
                           eerr.field, "%s", eerr.message);
        goto fail;
    }
    job->steps = edm_plan_num_steps(job->plan);
    job->nfe_per_image = edm_plan_nfe(job->plan);
    job->samples = calloc((size_t)job->n, sizeof *job->samples);
    if (!job->samples || job_alloc_arrays(job)) {
        rc = srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
        goto fail;
    }
    for (int i = 0; i < job->n; i++) {
        edm_sample_init init = {.seed = job->req.seeds[i],
                                .class_label = job->req.class_labels[i],
                                .init_image = job->req.image.init_image, /* copied */
                                .mask = job->req.image.mask,
                                .variation_seed = job->req.variation_seed,
                                .variation_strength = job->req.variation_strength};
        if (edm_sample_new(job->plan, &init, &job->samples[i], &eerr) != EDM_OK) {
            rc = srv_error_set(err, eerr.status == EDM_ENOMEM ? SRV_E_INTERNAL : SRV_E_INVALID_PARAM,
                               eerr.field, "%s", eerr.message);
            goto fail;
        }
    }
    /* the samples hold their copies; the job keeps the inputs' hashes for the PNG text */
    free(job->req.image.init_image);
    free(job->req.image.mask);
    job->req.image.init_image = job->req.image.mask = NULL;
    *out = job;
    return SRV_OK;
fail:
    job_free(job);
    return rc;
}

enum srv_err srv_job_from_request(const struct srv_models *models, struct srv_gen_request *req, int async,
                                  long timeout_ms, struct srv_job **out, struct srv_error *err) {
    *out = NULL;
    if (!req->seeds_given) /* generate.py's seeds are 32-bit; keep chosen ones readable */
        srv_gen_request_fill_seeds(req, srv_random_u64() & 0xffffffffu);
    if (timeout_ms <= 0) timeout_ms = req->timeout_ms;
    int model = req->model, keep = async || req->want_url; /* URLs must stay readable */
    enum srv_err rc = srv_job_new(req, &models->items[model], model, keep, timeout_ms, out, err);
    srv_gen_request_clear(req);
    return rc;
}

enum srv_err srv_job_from_body(const struct srv_models *models, const struct srv_req_limits *limits,
                               const char *body, size_t len, int async, long timeout_ms, struct srv_job **out,
                               struct srv_error *err) {
    struct srv_gen_request req;
    *out = NULL;
    enum srv_err rc = srv_json_req_parse_generate(body, len, &models->catalog, limits, &req, err);
    return rc ? rc : srv_job_from_request(models, &req, async, timeout_ms, out, err);
}

struct srv_job *srv_job_view_new(const char *id, const char *model, int n, int steps, int nfe_per_image) {
    struct srv_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    atomic_init(&job->refs, 1);
    snprintf(job->id, sizeof job->id, "%s", id);
    job->async = 1;
    job->view = 1;
    job->n = n;
    job->steps = steps;
    job->nfe_per_image = nfe_per_image;
    job->state = SRV_JOB_QUEUED;
    job->view_model = strdup(model);
    if (!job->view_model || job_alloc_arrays(job)) {
        job_free(job);
        return NULL;
    }
    return job;
}

const char *srv_job_model_name(const struct srv_job *job) {
    return job->view_model ? job->view_model : job->model->name;
}

struct srv_job *srv_job_ref(struct srv_job *job) {
    int before = atomic_fetch_add_explicit(&job->refs, 1, memory_order_relaxed);
    EDM_ASSERT(before >= 1); /* a new reference comes from a live one */
    return job;
}

void srv_job_unref(struct srv_job *job) {
    if (!job) return;
    int before = atomic_fetch_sub_explicit(&job->refs, 1, memory_order_acq_rel);
    EDM_ASSERT(before >= 1);
    if (before == 1) job_free(job);
}

void srv_job_snapshot(const struct srv_job *job, struct srv_job_snapshot *snap) {
    snap->state = job->state;
    snap->error = job->error;
    snap->step_done = job->step_done;
    snap->nfe_done = job->nfe_done;
    snap->t_started = job->t_started;
    snap->t_sampled = job->t_sampled;
    snap->t_done = job->t_done;
    snap->batch_sum = job->batch_sum;
    snap->batch_ticks = job->batch_ticks;
    snap->batch_max = job->batch_max;
    snap->encode_ms = job->encode_ms;
    snap->has_results = job->results != NULL && job->state == SRV_JOB_COMPLETED;
}

void srv_job_timings(const struct srv_job *job, const struct srv_job_snapshot *snap, double *queue_ms,
                     double *sampling_ms, double *encode_ms, double *total_ms) {
    if (job->view) { /* as the replica that ran it measured them */
        *queue_ms = job->view_timings[0], *sampling_ms = job->view_timings[1];
        *encode_ms = job->view_timings[2], *total_ms = job->view_timings[3];
        return;
    }
    uint64_t end = snap->t_done ? snap->t_done : srv_now_ns();
    *queue_ms = srv_ms_between(job->t_queued, snap->t_started ? snap->t_started : end);
    *sampling_ms = srv_ms_between(snap->t_started, snap->t_sampled);
    *encode_ms = snap->encode_ms;
    *total_ms = srv_ms_between(job->t_received, end);
}

static json_t *label_json(int label) {
    return label >= 0 ? json_integer(label) : json_null();
}

json_t *srv_job_result_json(const struct srv_job *job, const struct srv_job_snapshot *snap,
                            const char *url_prefix, int with_b64) {
    json_t *data = json_array();
    if (!data) return NULL;
    for (int i = 0; i < job->n; i++) {
        const struct srv_image_result *r = &job->results[i];
        json_t *d = json_pack("{s:i, s:I, s:o, s:i}", "index", i, "seed", (json_int_t)r->seed,
                              "class_label", label_json(r->class_label), "nfe", r->nfe);
        if (!d || json_array_append_new(data, d)) goto fail;
        if (with_b64) {
            char *b64 = malloc(srv_base64_len(r->png_len) + 1);
            if (!b64) goto fail;
            srv_base64_encode(r->png, r->png_len, b64);
            json_t *s = json_stringn_nocheck(b64, srv_base64_len(r->png_len));
            free(b64);
            if (!s || json_object_set_new(d, "b64_json", s)) goto fail;
        }
        if (url_prefix) {
            char url[640];
            snprintf(url, sizeof url, "%s/images/%d", url_prefix, i);
            if (json_object_set_new(d, "url", json_string(url))) goto fail;
        }
    }
    double queue_ms, sampling_ms, encode_ms, total_ms;
    srv_job_timings(job, snap, &queue_ms, &sampling_ms, &encode_ms, &total_ms);
    double mean = job->view         ? job->view_batch_mean
                  : snap->batch_ticks ? (double)snap->batch_sum / (double)snap->batch_ticks
                                      : 0.0;
    return json_pack("{s:s, s:s, s:I, s:s, s:o, s:i, s:i, s:{s:f, s:f, s:f, s:f}, s:{s:f, s:i}}",
                     "id", job->id, "object", "image.generation", "created", (json_int_t)job->created,
                     "model", srv_job_model_name(job), "data", data, "steps", job->steps, "nfe",
                     job->nfe_per_image, "timings", "queue_ms", queue_ms, "sampling_ms",
                     sampling_ms, "encode_ms", encode_ms, "total_ms", total_ms, "batch",
                     "mean_size", mean, "max_size", snap->batch_max);
fail:
    json_decref(data);
    return NULL;
}

json_t *srv_job_status_json(const struct srv_job *job, const struct srv_job_snapshot *snap, int with_b64) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:i, s:i, s:i, s:{s:i, s:i, s:I, s:I}}", "id",
                          job->id, "object", "job", "status", srv_job_state_name(snap->state),
                          "created", (json_int_t)job->created, "model", srv_job_model_name(job), "n",
                          job->n, "steps", job->steps, "nfe", job->nfe_per_image, "progress",
                          "steps_done", snap->step_done, "steps", job->steps, "nfe_done",
                          (json_int_t)snap->nfe_done, "nfe_total",
                          (json_int_t)job->nfe_per_image * job->n);
    if (!o) return NULL;
    if (snap->has_results) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "/v1/jobs/%s", job->id);
        json_t *r = srv_job_result_json(job, snap, prefix, with_b64);
        if (!r || json_object_set_new(o, "result", r)) goto fail;
    }
    if (snap->state == SRV_JOB_FAILED || snap->state == SRV_JOB_CANCELLED) {
        char *s = srv_error_json(&snap->error, NULL);
        json_t *e = s ? json_loads(s, 0, NULL) : NULL;
        free(s);
        if (!e || json_object_set(o, "error", json_object_get(e, "error"))) {
            json_decref(e);
            goto fail;
        }
        json_decref(e);
    }
    return o;
fail:
    json_decref(o);
    return NULL;
}
