/*
 * job.h - one generation request in flight: its images' sampler states, progress, timings,
 * result and the HTTP connections waiting on it.
 *
 * Locking: the fields marked [lock] are read and written only under the scheduler lock
 * (srv_sched_lock); the others are set before the job is submitted and never change, except
 * the samples, which belong to whichever worker or encoder holds the job at the time, and
 * the results, which are written once by the encoder before the job turns completed and are
 * immutable afterwards.
 *
 * Ownership: reference counted (srv_job_ref / srv_job_unref); the queue, a worker, the
 * encoder, the async job table and each HTTP request that looks at the job hold one each.
 * The job owns its request, plan, samples and PNGs.
 */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "edm.h"
#include "errors.h"
#include "json_req.h"
#include "models.h"

enum srv_job_state { SRV_JOB_QUEUED, SRV_JOB_RUNNING, SRV_JOB_COMPLETED, SRV_JOB_FAILED, SRV_JOB_CANCELLED };
const char *srv_job_state_name(enum srv_job_state s);
static inline int srv_job_state_terminal(enum srv_job_state s) { return s >= SRV_JOB_COMPLETED; }

/* Something waiting for news of a job (a suspended sync request, an SSE stream). wake() is
 * called under the scheduler lock after every change of the job; it must be quick and must
 * not take the lock. */
struct srv_watch {
    void (*wake)(struct srv_watch *w);
    struct srv_watch *next; /* [lock] */
};

struct srv_image_result {
    uint8_t *png; /* owned */
    size_t png_len;
    uint64_t seed;
    int class_label; /* -1: unconditional */
    int nfe;
};

struct srv_job {
    atomic_int refs;
    char id[48];
    int async;
    const struct srv_model *model; /* borrowed from the registry (outlives every job) */
    int model_index;
    struct srv_gen_request req;    /* owned */
    edm_plan *plan;                /* owned */
    edm_sample **samples;          /* [n], owned; see the locking note */
    int n, steps, nfe_per_image;
    int64_t created;               /* unix seconds */
    uint64_t t_received, t_queued; /* monotonic ns */
    uint64_t deadline;             /* monotonic ns */

    /* [lock] */
    enum srv_job_state state;
    struct srv_error error;        /* when failed or cancelled */
    int in_queue;
    uint64_t t_started, t_sampled, t_encoded, t_done, expires_at;
    int step_done;                 /* completed steps of the slowest image */
    long nfe_done;                 /* evaluations consumed, all images */
    long *nfe_at_step;             /* [steps + 1]: nfe_done when step_done reached k */
    int images_done;               /* images whose sampling finished */
    int *image_done;               /* [n] */
    unsigned char *image_read;     /* [n]: image i went out (GET of the job or of the image) */
    long batch_sum, batch_ticks;   /* sum of the sizes of the batches it took part in */
    int batch_max;
    double encode_ms;
    struct srv_image_result *results; /* [n] once completed, else NULL */
    struct srv_watch *watches;
    struct srv_job *q_prev, *q_next;  /* the queue or a worker's active list */
    struct srv_job *t_next, *h_next;  /* the async job table: age order, hash chain */

    /* The job store (jobstore.h). */
    char idem_key[72];             /* an async job's Idempotency-Key, or "" */
    char idem_sha[65];             /* with a key: SHA-256 of the request body it came with */
    int durable;                   /* a job of the shared (Redis) queue run here: the store
                                    * publishes its progress and writes its outcome */
    char entry[48];                /* durable: its entry in the queue stream */
    long attempt;                  /* durable: the run this replica holds the lease for */
    unsigned store_flags;          /* [lock] durable: the store's SRV_STORE_* bookkeeping */
    int store_sent_step;           /* durable: steps published so far (the store thread's) */
    struct srv_job *store_next;    /* [store lock] the store's list of jobs to publish */

    /* A view: a job as the store recorded it (another replica may be running it); it never
     * runs here. Its figures are filled by the store, its model may not be served here. */
    int view;
    char *view_model;              /* owned */
    double view_timings[4];        /* queue, sampling, encode, total (ms) */
    double view_batch_mean;
    long view_attempt;             /* followed: the latest run announced (2 and up: rerun
                                    * after the replica running it died) */
};

/* Makes a job from a parsed request (takes ownership of req's arrays, clearing *req): the
 * plan and one edm_sample per image. refs = 1. */
enum srv_err srv_job_new(struct srv_gen_request *req, const struct srv_model *model, int model_index,
                         int async, long timeout_ms, struct srv_job **out, struct srv_error *err);
/* A parsed request (takes its arrays, clearing *req, also on failure) into a job ready to
 * submit, choosing seeds when the request gives none. timeout_ms > 0 replaces the request's
 * own. */
enum srv_err srv_job_from_request(const struct srv_models *models, struct srv_gen_request *req, int async,
                                  long timeout_ms, struct srv_job **out, struct srv_error *err);
/* Parses a generation body (json_req.c) for a model of `models` into a job ready to submit
 * (srv_job_from_request). */
enum srv_err srv_job_from_body(const struct srv_models *models, const struct srv_req_limits *limits,
                               const char *body, size_t len, int async, long timeout_ms, struct srv_job **out,
                               struct srv_error *err);
/* A view (see above) of n images and `steps` steps, state queued, no results. refs = 1;
 * NULL when out of memory. */
struct srv_job *srv_job_view_new(const char *id, const char *model, int n, int steps, int nfe_per_image);
/* The model's name (a view's own). */
const char *srv_job_model_name(const struct srv_job *job);
struct srv_job *srv_job_ref(struct srv_job *job);
void srv_job_unref(struct srv_job *job);

/* A copy of the [lock] figures, taken under the lock, so that the JSON can be written
 * without it. */
struct srv_job_snapshot {
    enum srv_job_state state;
    struct srv_error error;
    int step_done;
    long nfe_done;
    uint64_t t_started, t_sampled, t_done;
    long batch_sum, batch_ticks;
    int batch_max;
    double encode_ms;
    int has_results;
};
void srv_job_snapshot(const struct srv_job *job, struct srv_job_snapshot *snap); /* [lock] */

/* The synchronous response body (also a completed job's "result"): id, created, model, data
 * [{index, seed, class_label, nfe, b64_json}], steps, nfe, timings, batch. The results must
 * exist (state completed). url_prefix: when not NULL each datum also gets
 * "url": "<url_prefix>/images/<index>". Returns a new reference or NULL. */
json_t *srv_job_result_json(const struct srv_job *job, const struct srv_job_snapshot *snap,
                            const char *url_prefix, int with_b64);
/* GET /v1/jobs/{id}: id, status, created, model, n, steps, progress, and result (images as
 * URLs, and as base64 when with_b64) or error. */
json_t *srv_job_status_json(const struct srv_job *job, const struct srv_job_snapshot *snap, int with_b64);
/* The figures of the timing header (Server-Timing). */
void srv_job_timings(const struct srv_job *job, const struct srv_job_snapshot *snap, double *queue_ms,
                     double *sampling_ms, double *encode_ms, double *total_ms);

#endif /* SRV_JOB_H */
