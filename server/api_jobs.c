/*
 * api_jobs.c - asynchronous jobs: POST /v1/jobs, GET and DELETE /v1/jobs/{id},
 * GET /v1/jobs/{id}/images/{index}. (The event stream is sse.c.)
 *
 * A job is the same work as a synchronous request, entered in the job table so it can be
 * read back until job-ttl seconds after it ends. DELETE cancels a queued job at once and a
 * running one at the worker's next tick (its images leave the batch); cancelling a job that
 * already ended is a 409.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "respond.h"
#include "routes.h"
#include "scheduler.h"

static enum MHD_Result not_found(struct srv_request *r) {
    struct srv_error e;
    srv_error_set(&e, SRV_E_JOB_NOT_FOUND, "id", "no job '%.64s' (unknown, or expired)", r->job_id);
    return srv_respond_error(r, &e);
}

static enum MHD_Result respond_status(struct srv_request *r, struct srv_job *job, int status,
                                      const char *const *headers) {
    struct srv_job_snapshot snap;
    srv_sched_lock();
    srv_job_snapshot(job, &snap);
    if (snap.has_results) srv_sched_mark_read(job, -1); /* the status carries every image */
    srv_sched_unlock();
    return srv_respond_json(r, status, srv_job_status_json(job, &snap, 1), headers);
}

enum MHD_Result srv_api_jobs_create(struct srv_request *r) {
    struct srv_error err;
    srv_error_clear(&err);
    struct srv_job *job = NULL;
    if (srv_api_make_job(r, 1, &job, &err) || srv_sched_submit(job, &err)) {
        srv_job_unref(job);
        return srv_respond_rejection(r, &err);
    }
    char location[96];
    snprintf(location, sizeof location, "/v1/jobs/%s", job->id);
    const char *headers[] = {"Location", location, NULL};
    r->job = job; /* for the access log; an async job outlives its request */
    return respond_status(r, job, 202, headers);
}

enum MHD_Result srv_api_job_get(struct srv_request *r) {
    struct srv_job *job = srv_sched_find(r->job_id);
    if (!job) return not_found(r);
    enum MHD_Result ret = respond_status(r, job, 200, NULL);
    srv_job_unref(job);
    return ret;
}

enum MHD_Result srv_api_job_delete(struct srv_request *r) {
    struct srv_job *job = srv_sched_find(r->job_id);
    if (!job) return not_found(r);
    srv_sched_lock();
    enum srv_job_state before = job->state;
    int cancelled = srv_sched_cancel(job, SRV_E_CANCELLED, "cancelled by DELETE");
    srv_sched_unlock();
    enum MHD_Result ret;
    if (!cancelled) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_JOB_FINISHED, "id", "job %s already ended (%s)", job->id,
                      srv_job_state_name(before));
        ret = srv_respond_error(r, &e);
    } else {
        ret = respond_status(r, job, 200, NULL);
    }
    srv_job_unref(job);
    return ret;
}

enum MHD_Result srv_api_job_image(struct srv_request *r) {
    struct srv_job *job = srv_sched_find(r->job_id);
    if (!job) return not_found(r);
    struct srv_job_snapshot snap;
    srv_sched_lock();
    srv_job_snapshot(job, &snap);
    srv_sched_unlock();
    struct srv_error e;
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
        char *png = malloc(img->png_len);
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
