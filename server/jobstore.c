/*
 * jobstore.c - the choice of job store, and the memory store (jobstore.h).
 *
 * The memory store is the scheduler's job table, exactly as before the interface existed:
 * a job is found by id in this process, cancelled under the scheduler lock, and followed
 * by watching the running job itself. Its Idempotency-Key lookup is a scan of the table
 * inside srv_sched_submit, so two POSTs with one key cannot both create a job.
 */
#include "jobstore.h"

#include <stdio.h>
#include <string.h>

#include "scheduler.h"

enum srv_err srv_jobstore_not_found(const char *id, struct srv_error *err) {
    return srv_error_set(err, SRV_E_JOB_NOT_FOUND, "id", "no job '%.64s' (unknown, or expired)", id);
}

enum srv_err srv_jobstore_ended(const struct srv_job *job, struct srv_error *err) {
    return srv_error_set(err, SRV_E_JOB_FINISHED, "id", "job %s already ended (%s)", job->id,
                         srv_job_state_name(job->state));
}

static int mem_open(const struct srv_jobstore_options *o, char *err, size_t err_size) {
    (void)o, (void)err, (void)err_size;
    return 0;
}

static int mem_start(char *err, size_t err_size) {
    (void)err, (void)err_size;
    return 0;
}

static enum srv_err mem_create(struct srv_job *job, const char *body, size_t len, struct srv_job **out,
                               int *replayed, struct srv_error *err) {
    (void)body, (void)len;
    struct srv_job *existing = NULL;
    enum srv_err rc = srv_sched_submit(job, &existing, err);
    if (rc) return rc;
    *replayed = existing != NULL;
    *out = existing ? existing : srv_job_ref(job);
    return SRV_OK;
}

static enum srv_err mem_get(const char *id, int images, struct srv_job **out, struct srv_error *err) {
    (void)images; /* the job holds its images */
    *out = srv_sched_find(id);
    return *out ? SRV_OK : srv_jobstore_not_found(id, err);
}

static enum srv_err mem_cancel(const char *id, struct srv_job **out, struct srv_error *err) {
    enum srv_err rc = mem_get(id, SRV_STORE_NO_IMAGES, out, err);
    if (rc) return rc;
    srv_sched_lock();
    if (!srv_sched_cancel(*out, SRV_E_CANCELLED, "cancelled by DELETE")) rc = srv_jobstore_ended(*out, err);
    srv_sched_unlock();
    return rc;
}

static enum srv_err mem_follow(const char *id, struct srv_job **out, struct srv_error *err) {
    return mem_get(id, SRV_STORE_NO_IMAGES, out, err);
}

static void mem_unfollow(struct srv_job *job) { srv_job_unref(job); }

static void mem_changed(struct srv_job *job) { (void)job; /* no job is durable */ }

static int mem_ready(char *why, size_t size) {
    (void)why, (void)size;
    return 1;
}

static int mem_reached(void) { return 1; }

static void mem_metrics(struct srv_buf *out) { (void)out; }
static void mem_stop_pulling(void) {}
static long mem_hand_back(void) { return 0; }

static long mem_flush(double timeout_s) {
    (void)timeout_s;
    return 0;
}

static void mem_close(void) {}

static const struct srv_jobstore_ops memory_store = {
    "memory", mem_open, mem_start, mem_create, mem_get, mem_cancel, mem_follow, mem_unfollow, mem_changed,
    mem_ready, mem_reached, mem_metrics, mem_stop_pulling, mem_hand_back, mem_flush, mem_close,
};

static const struct srv_jobstore_ops *store = &memory_store;

const struct srv_jobstore_ops *srv_jobstore(void) { return store; }

int srv_jobstore_select(const char *spec, char *err, size_t err_size) {
    if (!spec || !*spec || strcmp(spec, "memory") == 0) store = &memory_store;
    else if (strncmp(spec, "redis://", 8) == 0) store = &srv_jobstore_redis;
    else {
        snprintf(err, err_size, "job-store: expected memory or redis://[:PASSWORD@]HOST[:PORT][/DB], got '%.200s'",
                 spec);
        return -1;
    }
    return 0;
}
