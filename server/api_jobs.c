/*
 * api_jobs.c - asynchronous jobs: POST /v1/jobs, GET and DELETE /v1/jobs/{id},
 * GET /v1/jobs/{id}/images/{index}. (The event stream is sse.c.)
 *
 * A job is the same work as a synchronous request, recorded in the job store (jobstore.h:
 * this process's table, or Redis shared by a fleet) so that it can be read back until
 * job-ttl seconds after it ends. DELETE cancels a queued job at once and a running one at
 * its worker's next tick (its images leave the batch), on whichever replica runs it;
 * cancelling a job that already ended is a 409. An Idempotency-Key on POST makes a retry
 * answer the job the first POST made instead of starting another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobstore.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

static enum MHD_Result respond_status(struct srv_request *r, struct srv_job *job, int status,
                                      const char *const *headers) {
    struct srv_job_snapshot snap;
    srv_sched_lock();
    srv_job_snapshot(job, &snap);
    if (snap.has_results) srv_sched_mark_read(job, -1); /* the status carries every image */
    srv_sched_unlock();
    return srv_respond_json(r, status, srv_job_status_json(job, &snap, 1), headers);
}

/* The Idempotency-Key header into job->idem_key (1..64 printable ASCII characters), and the
 * body's SHA-256 into job->idem_sha: a key sent again with another body is a client's bug
 * (reusing keys), answered 422 rather than with the first body's job. */
static enum srv_err take_idempotency_key(struct srv_request *r, struct srv_job *job, struct srv_error *err) {
    const char *key = srv_request_header(r, "Idempotency-Key");
    if (!key) return SRV_OK;
    size_t n = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x21 || key[i] > 0x7e) n = 0;
    if (n == 0 || n > 64)
        return srv_error_set(err, SRV_E_BAD_REQUEST, "Idempotency-Key",
                             "Idempotency-Key must be 1..64 printable ASCII characters without spaces");
    memcpy(job->idem_key, key, n + 1);
    edm_sha256_hex(r->body.data ? r->body.data : "", r->body.len, job->idem_sha);
    return SRV_OK;
}

enum MHD_Result srv_api_jobs_create(struct srv_request *r) {
    struct srv_error err;
    srv_error_clear(&err);
    struct srv_job *job = NULL, *out = NULL;
    int replayed = 0;
    if (srv_api_make_job(r, 1, &job, &err) || take_idempotency_key(r, job, &err) ||
        srv_jobstore()->create(job, r->body.data ? r->body.data : "", r->body.len, &out, &replayed, &err)) {
        srv_job_unref(job);
        return srv_respond_error(r, &err);
    }
    srv_job_unref(job);
    char location[96];
    snprintf(location, sizeof location, "/v1/jobs/%s", out->id);
    const char *headers[] = {"Location", location, replayed ? "Idempotent-Replayed" : NULL, "true", NULL};
    r->job = out; /* for the access log; an async job outlives its request */
    return respond_status(r, out, 202, headers);
}

enum MHD_Result srv_api_job_get(struct srv_request *r) {
    struct srv_error e;
    struct srv_job *job = NULL;
    if (srv_jobstore()->get(r->job_id, SRV_STORE_ALL_IMAGES, &job, &e)) return srv_respond_error(r, &e);
    enum MHD_Result ret = respond_status(r, job, 200, NULL);
    srv_job_unref(job);
    return ret;
}

enum MHD_Result srv_api_job_delete(struct srv_request *r) {
    struct srv_error e;
    struct srv_job *job = NULL;
    enum srv_err rc = srv_jobstore()->cancel(r->job_id, &job, &e);
    enum MHD_Result ret = rc ? srv_respond_error(r, &e) : respond_status(r, job, 200, NULL);
    srv_job_unref(job);
    return ret;
}

enum MHD_Result srv_api_job_image(struct srv_request *r) {
    struct srv_error e;
    struct srv_job *job = NULL;
    if (srv_jobstore()->get(r->job_id, r->image_index, &job, &e)) return srv_respond_error(r, &e);
    struct srv_job_snapshot snap;
    srv_sched_lock();
    srv_job_snapshot(job, &snap);
    srv_sched_unlock();
    enum MHD_Result ret;
    if (!snap.has_results) {
        srv_error_set(&e, SRV_E_JOB_NOT_DONE, "id", "job %s is %s; images exist once it has completed",
                      job->id, srv_job_state_name(snap.state));
        ret = srv_respond_error(r, &e);
    } else if (r->image_index < 0 || r->image_index >= job->n) {
        srv_error_set(&e, SRV_E_NOT_FOUND, "index", "job %s has images 0..%d", job->id, job->n - 1);
        ret = srv_respond_error(r, &e);
    } else {
        const struct srv_image_result *img = &job->results[r->image_index];
        char *png = malloc(img->png_len ? img->png_len : 1);
        if (!png) {
            srv_job_unref(job);
            return MHD_NO;
        }
        memcpy(png, img->png, img->png_len);
        srv_sched_lock();
        srv_sched_mark_read(job, r->image_index);
        srv_sched_unlock();
        char seed[24], nfe[16], label[16];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)img->seed);
        snprintf(nfe, sizeof nfe, "%d", img->nfe);
        snprintf(label, sizeof label, "%d", img->class_label);
        const char *headers[] = {"X-EDM-Seed", seed, "X-EDM-NFE", nfe, "X-EDM-Class-Label",
                                 img->class_label >= 0 ? label : "none", "Cache-Control",
                                 "private, max-age=3600, immutable", NULL};
        ret = srv_respond(r, 200, "image/png", png, img->png_len, headers);
    }
    srv_job_unref(job);
    return ret;
}
