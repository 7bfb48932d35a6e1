/*
 * api_generate.c - POST /v1/images/generations, the synchronous endpoint.
 *
 * The body is parsed and validated (json_req.c), turned into a job (one edm_sample per
 * image, seeds reported back even when chosen here), queued, and the connection is parked
 * until the job ends. Then one answer: 200 with JSON (every image as base64 PNG, the NFE,
 * timings and batch figures), or with "Accept: image/png" and n=1 the PNG itself with the
 * same figures in headers; or the job's error (504 deadline, 503 drained, 500 engine).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "park.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

enum srv_err srv_api_make_job(struct srv_request *r, int async, struct srv_job **out,
                              struct srv_error *err) {
    return srv_job_from_body(r->srv->models, &r->srv->limits, r->body.data ? r->body.data : "", r->body.len, async,
                             0, out, err);
}

/* "Accept: image/png" (and not JSON first): the raw PNG is wanted. */
static int accepts_png_only(const char *accept) {
    if (!accept) return 0;
    const char *png = strcasestr(accept, "image/png");
    const char *json = strcasestr(accept, "application/json");
    return png && (!json || json > png);
}

static enum MHD_Result generate_resumed(struct srv_request *r);

enum MHD_Result srv_api_generate(struct srv_request *r) {
    struct srv_error err;
    srv_error_clear(&err);
    struct srv_job *job = NULL;
    if (srv_api_make_job(r, 0, &job, &err)) return srv_respond_rejection(r, &err);
    r->want_png = accepts_png_only(srv_request_header(r, "Accept"));
    if (r->want_png && job->n != 1) {
        srv_error_set(&err, SRV_E_NOT_ACCEPTABLE, "n", "Accept: image/png needs n = 1 (got %d)", job->n);
        srv_job_unref(job);
        return srv_respond_rejection(r, &err);
    }
    if (srv_sched_submit(job, NULL, &err)) {
        srv_job_unref(job);
        return srv_respond_rejection(r, &err);
    }
    r->job = job; /* our reference; the queue holds its own */
    if (srv_park_wait_for_job(r, generate_resumed)) return MHD_YES;
    return generate_resumed(r);
}

/* The job has ended: its one answer. */
static enum MHD_Result generate_resumed(struct srv_request *r) {
    struct srv_job *job = r->job;
    struct srv_job_snapshot snap;
    srv_sched_lock();
    srv_job_snapshot(job, &snap);
    srv_sched_unlock();
    if (!srv_job_state_terminal(snap.state)) return MHD_YES; /* not reached: only the end of the job unparks (MHD would call again) */
    if (snap.state != SRV_JOB_COMPLETED) return srv_respond_error(r, &snap.error);

    double q, s, e, t;
    srv_job_timings(job, &snap, &q, &s, &e, &t);
    char timing[160], nfe[16], seed[24], label[16], steps[16], bmean[24], bmax[16];
    snprintf(timing, sizeof timing, "queue;dur=%.3f, sampling;dur=%.3f, encode;dur=%.3f, total;dur=%.3f", q, s,
             e, t);
    snprintf(nfe, sizeof nfe, "%d", job->results[0].nfe);
    snprintf(steps, sizeof steps, "%d", job->steps);
    snprintf(bmean, sizeof bmean, "%.3f", snap.batch_ticks ? (double)snap.batch_sum / (double)snap.batch_ticks : 0.0);
    snprintf(bmax, sizeof bmax, "%d", snap.batch_max);
    if (r->want_png) {
        const struct srv_image_result *img = &job->results[0];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)img->seed);
        snprintf(label, sizeof label, "%d", img->class_label);
        char *png = malloc(img->png_len);
        if (!png) return MHD_NO;
        memcpy(png, img->png, img->png_len);
        const char *headers[] = {"Server-Timing", timing, "X-EDM-NFE", nfe, "X-EDM-Seed", seed,
                                 "X-EDM-Class-Label", img->class_label >= 0 ? label : "none",
                                 "X-EDM-Steps", steps, "X-EDM-Batch-Mean", bmean, "X-EDM-Batch-Max", bmax,
                                 "X-EDM-Id", job->id, NULL};
        return srv_respond(r, 200, "image/png", png, img->png_len, headers);
    }
    const char *headers[] = {"Server-Timing", timing, "X-EDM-NFE", nfe, "X-EDM-Steps", steps, NULL};
    return srv_respond_json(r, 200, srv_job_result_json(job, &snap, NULL, 1), headers);
}
