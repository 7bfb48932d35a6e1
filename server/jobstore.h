/*
 * jobstore.h - where asynchronous jobs live, behind one small interface.
 *
 *   memory  (the default) this process: the scheduler's job table, as edmd has always done.
 *           One replica, no dependency; a job dies with its process.
 *   redis   redis://[:PASSWORD@]HOST[:PORT][/DB]: a queue and a result store shared by a
 *           fleet (jobstore_redis.c). POST /v1/jobs on any replica records the job and
 *           enqueues it; every replica pulls jobs while its batching has room and runs them
 *           under a lease; any replica answers GET, DELETE, events and images of any job;
 *           a dead replica's jobs run again elsewhere once its lease expires.
 *
 * Synchronous generation never touches the store.
 *
 * The handlers call the store through srv_jobstore(); every call that returns a job gives
 * the caller a reference (srv_job_unref). With Redis the job is a view (job.h): a copy of
 * the record read for this request. All calls are bounded in time (Redis calls time out
 * after a second or two) and fail with SRV_E_STORE_UNAVAILABLE (503, Retry-After) while
 * the store cannot be reached.
 */
#ifndef SRV_JOBSTORE_H
#define SRV_JOBSTORE_H

#include <stddef.h>

#include "errors.h"
#include "job.h"
#include "models.h"
#include "util.h"

/* What get() should load of a completed job's PNGs. */
enum { SRV_STORE_NO_IMAGES = -2, SRV_STORE_ALL_IMAGES = -1 /* >= 0: that image only */ };

/* Bookkeeping bits of a durable job (job->store_flags, [sched lock]). */
enum {
    SRV_STORE_LOST = 1,      /* the lease went elsewhere, or the job ended in the store:
                              * nothing more of this run is written */
    SRV_STORE_HAND_BACK = 2, /* draining: release the lease instead of failing the job */
    SRV_STORE_RUNNING = 4,   /* its "running" was published */
};

struct srv_jobstore_options {
    const char *spec;          /* "memory" or a redis:// URL */
    const char *password_file; /* "" or a file whose first line is the password */
    double lease_s, job_ttl_s;
    long max_jobs; /* Redis: most unfinished jobs in the shared queue (429 beyond) */
    /* to make jobs from the records of the shared queue (borrowed; outlive the store) */
    const struct srv_models *models;
    const struct srv_req_limits *limits;
};

struct srv_jobstore_ops {
    const char *name;
    /* Connects (Redis: a failure is not fatal, the store comes up when Redis does). */
    int (*open)(const struct srv_jobstore_options *o, char *err, size_t err_size);
    /* Starts pulling from the shared queue; after the scheduler has started. */
    int (*start)(char *err, size_t err_size);
    /* Records a new async job and queues it (takes no reference to job). *out: the job to
     * answer with (a reference): job itself, or the one an earlier POST made with the same
     * job->idem_key (*replayed = 1). 429/503 as the scheduler refuses, or 503 store. */
    enum srv_err (*create)(struct srv_job *job, const char *body, size_t len, struct srv_job **out,
                           int *replayed, struct srv_error *err);
    /* The job by id; images: SRV_STORE_* or an index. 404 when unknown or expired. */
    enum srv_err (*get)(const char *id, int images, struct srv_job **out, struct srv_error *err);
    /* Cancels a queued or running job (wherever it runs): SRV_OK with the job after the
     * cancel, SRV_E_JOB_FINISHED with the job as it ended, or 404/503 with no job. */
    enum srv_err (*cancel)(const char *id, struct srv_job **out, struct srv_error *err);
    /* A job whose changes wake its watchers (srv_sched_watch) until unfollow: the event
     * stream's. */
    enum srv_err (*follow)(const char *id, struct srv_job **out, struct srv_error *err);
    void (*unfollow)(struct srv_job *job);
    /* [sched lock] A durable job run here changed (the scheduler's srv_sched_notify). */
    void (*changed)(struct srv_job *job);
    /* 1 when usable; else why into buf (readiness). */
    int (*ready)(char *why, size_t size);
    /* 1 once the store has been usable at least once since start: an outage then is not a
     * misconfiguration (readiness, srv_api_readyz). */
    int (*reached)(void);
    /* Appends the store's series to /metrics. */
    void (*metrics)(struct srv_buf *out);
    /* Drain: stop taking jobs from the shared queue. */
    void (*stop_pulling)(void);
    /* Drain timeout: the jobs still running here are given back to the queue (their leases
     * released) rather than failed; call before srv_sched_abort_all. Returns how many. */
    long (*hand_back)(void);
    /* Waits up to timeout_s until every outcome of a job run here is written to the
     * store; returns how many are not. */
    long (*flush)(double timeout_s);
    void (*close)(void);
};

/* The store chosen by srv_jobstore_select (memory until then). */
const struct srv_jobstore_ops *srv_jobstore(void);
/* Chooses the store for spec ("memory" or "redis://..."); 0, or -1 with err. */
int srv_jobstore_select(const char *spec, char *err, size_t err_size);

/* The errors both stores answer: 404 job_not_found, 409 job_finished. */
enum srv_err srv_jobstore_not_found(const char *id, struct srv_error *err);
enum srv_err srv_jobstore_ended(const struct srv_job *job, struct srv_error *err);

/* The Redis store (jobstore_redis.c). */
extern const struct srv_jobstore_ops srv_jobstore_redis;

#endif /* SRV_JOBSTORE_H */
