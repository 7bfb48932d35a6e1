/*
 * scheduler.h - the bounded queue, the workers that own the engine (one per compute device),
 * the PNG encoders, and the table of asynchronous jobs.
 *
 * Step-level continuous batching: each worker keeps a list of active jobs; every tick it
 * admits queued jobs while it has room (fewer than max_batch unfinished images), gathers up
 * to max_batch pending images of one model, oldest job first, whatever their step, stage,
 * sigma schedule, seed or label, evaluates D once for all of them (edm_denoiser_step) and
 * advances each. Finished images go to the encoders; cancelled and expired jobs leave the
 * list at the next tick.
 *
 * Every job ends in exactly one terminal state (completed, failed, cancelled), set by
 * srv_sched_finish under the lock: whoever gets there first wins, later attempts are no-ops.
 *
 * Locking: one mutex (srv_sched_lock) guards the queue, the workers' active lists, the job
 * table and every [lock] field of every job. Nothing slow runs under it: network
 * evaluations and PNG encoding run unlocked on objects their thread holds.
 */
#ifndef SRV_SCHEDULER_H
#define SRV_SCHEDULER_H

#include "edm.h"
#include "job.h"
#include "metrics.h"
#include "models.h"

struct srv_sched_options {
    const struct srv_models *models; /* borrowed; outlives the scheduler */
    edm_backend_options backend;     /* device is overridden per worker */
    const int *devices;              /* device ordinals of the backend, one worker each */
    int n_devices;
    int max_batch, max_queue, encode_threads, png_level, max_jobs;
    double job_ttl_s;
};

/* Creates the workers (a backend and one denoiser per model each: uploads weights) and the
 * encoders. Slow. Returns 0, or -1 with err filled. */
int srv_sched_start(const struct srv_sched_options *opts, char *err, size_t err_size);
/* Stops and joins every thread and drops every job (call srv_sched_abort_all first so that
 * every accepted request has its answer). */
void srv_sched_stop(void);
/* A line describing the workers, e.g. "1 worker: cpu (OpenBLAS, 2 threads, fp32)". */
const char *srv_sched_describe(void);

void srv_sched_lock(void);
void srv_sched_unlock(void);

/* Queues the job (takes a reference) and, for an async job that is not durable (jobstore.h),
 * enters it in the table (another reference). An async job whose idem_key names a job of
 * the table is not queued: *existing gets that job (a reference for the caller; existing
 * may be NULL for a job without a key). Fails with 429 (queue or table full), 503
 * (draining, device failed). */
enum srv_err srv_sched_submit(struct srv_job *job, struct srv_job **existing, struct srv_error *err);

/* [lock] Moves a job to a terminal state (completed needs the results set). Returns 1 when
 * this call decided the outcome, 0 when the job had already ended. */
int srv_sched_finish(struct srv_job *job, enum srv_job_state state, const struct srv_error *err);
/* [lock] Cancels a queued or running job (DELETE, client gone): cancelled with `code`. */
int srv_sched_cancel(struct srv_job *job, enum srv_err code, const char *message);

/* [lock] Wakes every watcher of the job (and tells the job store of a durable job). */
void srv_sched_notify(struct srv_job *job);
/* [lock] Registers / removes a waiter (see struct srv_watch). */
void srv_sched_watch(struct srv_job *job, struct srv_watch *w);
void srv_sched_unwatch(struct srv_job *job, struct srv_watch *w);

/* An async job by id, with a reference for the caller (srv_job_unref), or NULL. */
struct srv_job *srv_sched_find(const char *id);
/* The queue view (sched_list.c): up to `limit` async jobs into out[], newest first, starting
 * after the job `after` (NULL: with the newest), each with a reference for the caller;
 * *has_more: older jobs remain. Returns the count, -1 out of memory, -2 `after` unknown. */
int srv_sched_list_jobs(const char *after, int limit, struct srv_job **out, int *has_more);

/* [lock] Notes that a completed job's image `index` (-1: all of them) went out to a client. */
void srv_sched_mark_read(struct srv_job *job, int index);
/* Completed async jobs with images no client has read yet (the drain waits for them). */
long srv_sched_unread_jobs(void);

/* SIGTERM: new work is refused with 503 from now on. */
void srv_sched_set_draining(void);
int srv_sched_draining(void);
/* Waits until no accepted job is unfinished or timeout_s passed; returns how many remain. */
long srv_sched_wait_idle(double timeout_s);
/* Ends every unfinished job with the error (drain timeout, shutdown). */
void srv_sched_abort_all(enum srv_err code, const char *message);
/* Expires queued jobs past their deadline and finished async jobs past their time to live. */
void srv_sched_housekeeping(void);

int srv_sched_device_failed(void);
/* Whether the workers have room for more images than they run and the queue holds (the
 * shared queue is pulled only then: replicas balance by pulling). 0 while draining. */
int srv_sched_room(void);
/* Fills the scheduler's gauges (queue depth, images in flight, jobs stored, device failed). */
void srv_sched_gauges(struct srv_metrics_gauges *g);

#endif /* SRV_SCHEDULER_H */
