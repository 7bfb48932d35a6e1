/*
 * api_generate.c - POST /v1/images/generations, the synchronous endpoint.
 *
 * The body is parsed and validated (json_req.c), turned into a job (one edm_sample per
 * image, seeds reported back even when chosen here), queued, and the connection is parked
 * until the job ends. Then one answer: 200 with JSON (every image as base64 PNG, the NFE,
 * timings and batch figures), or the PNG itself with the same figures in headers when Accept
 * prefers it (q-values and image/ ranges count; n must be 1); or the job's error (504 deadline,
 * 503 drained, 500 engine).
 *
 * OpenAI's response_format "url" answers with absolute URLs of the images instead of their
 * bytes; they must stay readable, so such a generation is kept in the job table like an
 * asynchronous job (GET /v1/jobs/{id}, until --job-ttl after it ends). A body sent as
 * application/x-www-form-urlencoded (curl -d) is read as JSON; when it is not JSON it really
 * was a form, and the answer is 415. The answer's half (srv_api_answer_job) also serves
 * OpenAI's edits and variations (api_edits.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "negotiate.h"
#include "park.h"
#include "public_url.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

enum srv_err srv_api_make_job(struct srv_request *r, int async, struct srv_job **out,
                              struct srv_error *err) {
    struct srv_server *srv = r->srv;
    enum srv_err rc = srv_job_from_body(srv->models, &srv->limits, r->body.data ? r->body.data : "",
                                        r->body.len, async, 0, out, err);
    if (rc == SRV_E_INVALID_JSON && srv_media_type_is(srv_request_header(r, "Content-Type"),
                                                      "application/x-www-form-urlencoded")) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        return srv_error_set(err, SRV_E_MEDIA_TYPE, NULL,
                             "the body must be JSON (application/json; a form-encoded body is read "
                             "as JSON, and this one is not: %.200s)",
                             why);
    }
    return rc;
}

/* What the answer is, from Accept: 0 JSON, 1 the PNG, -1 neither is acceptable (406). A PNG
 * for n > 1 images falls back to JSON when that is acceptable too. */
static int wanted_body(const char *accept, int n) {
    static const char *const offers[] = {"application/json", "image/png"};
    int choice = srv_accept_choose(accept, offers, 2);
    if (choice == 1 && n != 1 && srv_accept_choose(accept, offers, 1) == 0) return 0;
    return choice;
}

static enum MHD_Result generate_resumed(struct srv_request *r);

enum MHD_Result srv_api_generate(struct srv_request *r) {
    struct srv_error err;
    srv_error_clear(&err);
    struct srv_job *job = NULL;
    if (srv_api_make_job(r, 0, &job, &err)) return srv_respond_error(r, &err);
    return srv_api_answer_job(r, job);
}

enum MHD_Result srv_api_answer_job(struct srv_request *r, struct srv_job *job) {
    struct srv_error err;
    srv_error_clear(&err);
    int body = wanted_body(srv_request_header(r, "Accept"), job->n);
    r->want_png = body == 1;
    if (body < 0 || (r->want_png && job->n != 1)) {
        if (body < 0)
            srv_error_set(
                &err, SRV_E_NOT_ACCEPTABLE, NULL,
                "the answer is application/json, or image/png for n = 1; Accept takes neither");
        else
            srv_error_set(&err, SRV_E_NOT_ACCEPTABLE, "n", "Accept: image/png needs n = 1 (got %d)",
                          job->n);
        srv_job_unref(job);
        return srv_respond_error(r, &err);
    }
    if (srv_sched_submit(job, NULL, &err)) {
        srv_job_unref(job);
        return srv_respond_error(r, &err);
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
    if (job->req.want_url) { /* OpenAI's response_format "url": absolute URLs, no bytes */
        char prefix[512];
        srv_public_url(r, prefix, sizeof prefix - 64);
        snprintf(prefix + strlen(prefix), sizeof prefix - strlen(prefix), "/v1/jobs/%s", job->id);
        return srv_respond_json(r, 200, srv_job_result_json(job, &snap, prefix, 0), headers);
    }
    return srv_respond_json(r, 200, srv_job_result_json(job, &snap, NULL, 1), headers);
}
