/*
 * scheduler.c - queue, job table, terminal states, draining (scheduler.h).
 *
 * The workers (worker.c) and encoders (encoder.c) do the work; this file decides who may
 * enter (bounded queue: 429 when full, 503 when draining or without a working device),
 * makes sure each job ends exactly once (srv_sched_finish), and keeps finished async jobs
 * readable for job-ttl seconds. The job table is a hash of ids plus an insertion-ordered
 * list, so lookups are O(1) and eviction takes the oldest finished job first.
 */
#include "sched_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobstore.h"
#include "util.h"

struct srv_sched srv_sched_g = {.lock = PTHREAD_MUTEX_INITIALIZER};

void srv_sched_lock(void) { pthread_mutex_lock(&srv_sched_g.lock); }
void srv_sched_unlock(void) { pthread_mutex_unlock(&srv_sched_g.lock); }

/* ---- lists ------------------------------------------------------------------------------ */

void srv_job_list_push(struct srv_job_list *l, struct srv_job *job) {
    job->q_next = NULL;
    job->q_prev = l->tail;
    if (l->tail) l->tail->q_next = job;
    else l->head = job;
    l->tail = job;
    l->len++;
}

void srv_job_list_remove(struct srv_job_list *l, struct srv_job *job) {
    EDM_ASSERT(l->len > 0 && (job->q_prev || l->head == job) && (job->q_next || l->tail == job));
    if (job->q_prev) job->q_prev->q_next = job->q_next;
    else l->head = job->q_next;
    if (job->q_next) job->q_next->q_prev = job->q_prev;
    else l->tail = job->q_prev;
    job->q_prev = job->q_next = NULL;
    l->len--;
}

struct srv_job *srv_job_list_pop(struct srv_job_list *l) {
    struct srv_job *job = l->head;
    if (job) srv_job_list_remove(l, job);
    return job;
}

/* ---- the async job table ---------------------------------------------------------------- */

static unsigned bucket_of(const char *id) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++) h = (h ^ (uint8_t)*id) * 16777619u;
    return h % SRV_TABLE_BUCKETS;
}

struct srv_job *srv_sched_find(const char *id) {
    struct srv_sched *g = &srv_sched_g;
    struct srv_job *found = NULL;
    pthread_mutex_lock(&g->lock);
    for (struct srv_job *j = g->buckets[bucket_of(id)]; j; j = j->h_next)
        if (strcmp(j->id, id) == 0) {
            found = srv_job_ref(j);
            break;
        }
    pthread_mutex_unlock(&g->lock);
    return found;
}

static void table_insert(struct srv_sched *g, struct srv_job *job) {
    unsigned b = bucket_of(job->id);
    job->h_next = g->buckets[b];
    g->buckets[b] = srv_job_ref(job);
    job->t_next = NULL;
    if (g->table_tail) g->table_tail->t_next = job;
    else g->table_head = job;
    g->table_tail = job;
    g->table_len++;
}

/* Removes the job that follows prev in table order (prev NULL: the head). */
static void table_remove_after(struct srv_sched *g, struct srv_job *prev) {
    struct srv_job *job = prev ? prev->t_next : g->table_head;
    if (prev) prev->t_next = job->t_next;
    else g->table_head = job->t_next;
    if (g->table_tail == job) g->table_tail = prev;
    struct srv_job **pp = &g->buckets[bucket_of(job->id)];
    while (*pp != job) pp = &(*pp)->h_next;
    *pp = job->h_next;
    g->table_len--;
    srv_job_unref(job);
}

/* The unexpired job of the table made with this Idempotency-Key, or NULL. */
static struct srv_job *table_find_key(struct srv_sched *g, const char *key) {
    uint64_t now = srv_now_ns();
    for (struct srv_job *j = g->table_head; j; j = j->t_next)
        if (strcmp(j->idem_key, key) == 0 && !(srv_job_state_terminal(j->state) && now >= j->expires_at)) return j;
    return NULL;
}

/* Makes room for one more job: evicts the oldest finished job. 0 on success. */
static int table_make_room(struct srv_sched *g) {
    if (g->table_len < g->opts.max_jobs) return 0;
    struct srv_job *prev = NULL;
    for (struct srv_job *j = g->table_head; j; prev = j, j = j->t_next)
        if (srv_job_state_terminal(j->state)) {
            table_remove_after(g, prev);
            return 0;
        }
    return -1;
}

/* ---- watchers and terminal states ------------------------------------------------------- */

void srv_sched_watch(struct srv_job *job, struct srv_watch *w) {
    w->next = job->watches;
    job->watches = w;
}

void srv_sched_unwatch(struct srv_job *job, struct srv_watch *w) {
    for (struct srv_watch **pp = &job->watches; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            w->next = NULL;
            return;
        }
}

void srv_sched_notify(struct srv_job *job) {
    for (struct srv_watch *w = job->watches; w; w = w->next) w->wake(w);
    if (job->durable) srv_jobstore()->changed(job); /* the shared store hears of it too */
}

int srv_sched_finish(struct srv_job *job, enum srv_job_state state, const struct srv_error *err) {
    struct srv_sched *g = &srv_sched_g;
    if (srv_job_state_terminal(job->state)) return 0;
    uint64_t now = srv_now_ns();
    job->state = state;
    if (err) job->error = *err;
    job->t_done = now;
    job->expires_at = now + (uint64_t)(g->opts.job_ttl_s * 1e9);
    int was_queued = job->in_queue;
    if (was_queued) {
        srv_job_list_remove(&g->queue, job);
        job->in_queue = 0;
    }
    if (--g->unfinished == 0) pthread_cond_broadcast(&g->idle);
    enum srv_outcome outcome = SRV_OUTCOME_FAILED;
    if (state == SRV_JOB_COMPLETED) outcome = SRV_OUTCOME_COMPLETED;
    else if (state == SRV_JOB_CANCELLED) outcome = SRV_OUTCOME_CANCELLED;
    else if (err && err->code == SRV_E_DEADLINE) outcome = SRV_OUTCOME_DEADLINE;
    srv_metrics_request_done(job->async, outcome, job->n, srv_ms_between(job->t_received, now) / 1e3);
    srv_sched_notify(job);
    if (was_queued) srv_job_unref(job); /* the queue's reference; the caller holds another */
    return 1;
}

int srv_sched_cancel(struct srv_job *job, enum srv_err code, const char *message) {
    struct srv_error e;
    srv_error_set(&e, code, NULL, "%s", message);
    return srv_sched_finish(job, code == SRV_E_CANCELLED ? SRV_JOB_CANCELLED : SRV_JOB_FAILED, &e);
}

void srv_sched_fail_queue(enum srv_err code, const char *message) {
    struct srv_sched *g = &srv_sched_g;
    struct srv_job *job;
    while ((job = g->queue.head) != NULL) {
        srv_job_ref(job);
        srv_sched_cancel(job, code, message);
        srv_job_unref(job);
    }
}

/* ---- entry ------------------------------------------------------------------------------ */

enum srv_err srv_sched_submit(struct srv_job *job, struct srv_job **existing, struct srv_error *err) {
    struct srv_sched *g = &srv_sched_g;
    enum srv_err rc = SRV_OK;
    int in_table = job->async && !job->durable; /* a durable job's record is the store's */
    struct srv_job *same = NULL;
    if (existing) *existing = NULL;
    pthread_mutex_lock(&g->lock);
    if (in_table && existing && job->idem_key[0] && (same = table_find_key(g, job->idem_key)) != NULL) {
        if (strcmp(same->idem_sha, job->idem_sha) == 0)
            *existing = srv_job_ref(same);
        else
            rc = srv_error_set(err, SRV_E_IDEM_REUSED, "Idempotency-Key",
                               "this Idempotency-Key made job %s from another request body", same->id);
    } else if (g->draining || g->stopping) {
        rc = srv_error_set(err, SRV_E_DRAINING, NULL, "the server is shutting down");
    } else if (g->n_workers == 0 || g->n_failed_workers == g->n_workers) {
        rc = srv_error_set(err, SRV_E_UNAVAILABLE, NULL, "no working compute device");
    } else if (g->queue.len >= g->opts.max_queue) {
        rc = srv_error_set(err, SRV_E_QUEUE_FULL, NULL, "the queue is full (%d requests waiting)",
                           g->opts.max_queue);
    } else if (in_table && table_make_room(g) != 0) {
        rc = srv_error_set(err, SRV_E_QUEUE_FULL, NULL, "too many unfinished jobs (%d)",
                           g->opts.max_jobs);
    } else {
        job->t_queued = srv_now_ns();
        job->in_queue = 1;
        srv_job_list_push(&g->queue, srv_job_ref(job));
        g->unfinished++;
        if (in_table) table_insert(g, job);
        pthread_cond_signal(&g->work);
    }
    pthread_mutex_unlock(&g->lock);
    return rc;
}

/* ---- draining and housekeeping ---------------------------------------------------------- */

void srv_sched_set_draining(void) {
    pthread_mutex_lock(&srv_sched_g.lock);
    srv_sched_g.draining = 1;
    pthread_mutex_unlock(&srv_sched_g.lock);
}

int srv_sched_draining(void) {
    pthread_mutex_lock(&srv_sched_g.lock);
    int d = srv_sched_g.draining;
    pthread_mutex_unlock(&srv_sched_g.lock);
    return d;
}

long srv_sched_wait_idle(double timeout_s) {
    struct srv_sched *g = &srv_sched_g;
    const struct timespec until = srv_deadline_after((uint64_t)(timeout_s * 1e9));
    pthread_mutex_lock(&g->lock);
    while (g->unfinished > 0)
        if (pthread_cond_timedwait(&g->idle, &g->lock, &until) == ETIMEDOUT) break;
    long left = g->unfinished;
    pthread_mutex_unlock(&g->lock);
    return left;
}

void srv_sched_mark_read(struct srv_job *job, int index) {
    if (index >= 0) job->image_read[index] = 1;
    else memset(job->image_read, 1, (size_t)job->n);
}

long srv_sched_unread_jobs(void) {
    struct srv_sched *g = &srv_sched_g;
    long n = 0;
    pthread_mutex_lock(&g->lock);
    for (struct srv_job *j = g->table_head; j; j = j->t_next)
        n += j->state == SRV_JOB_COMPLETED && memchr(j->image_read, 0, (size_t)j->n) != NULL;
    pthread_mutex_unlock(&g->lock);
    return n;
}

static void abort_list(struct srv_job_list *l, enum srv_err code, const char *message) {
    for (struct srv_job *j = l->head; j; j = j->q_next) srv_sched_cancel(j, code, message);
}

void srv_sched_abort_all(enum srv_err code, const char *message) {
    struct srv_sched *g = &srv_sched_g;
    pthread_mutex_lock(&g->lock);
    srv_sched_fail_queue(code, message);
    for (int i = 0; i < g->n_workers; i++) abort_list(&g->workers[i].active, code, message);
    abort_list(&g->encode_queue, code, message);
    /* jobs being encoded right now are on no list; the table still knows the async ones */
    for (struct srv_job *j = g->table_head; j; j = j->t_next) srv_sched_cancel(j, code, message);
    pthread_mutex_unlock(&g->lock);
}

void srv_sched_housekeeping(void) {
    struct srv_sched *g = &srv_sched_g;
    uint64_t now = srv_now_ns();
    struct srv_error e;
    pthread_mutex_lock(&g->lock);
    for (struct srv_job *j = g->queue.head, *next; j; j = next) {
        next = j->q_next;
        if (now >= j->deadline) {
            srv_error_set(&e, SRV_E_DEADLINE, "timeout_ms", "the deadline (%ld ms) passed while queued",
                          j->req.timeout_ms);
            srv_job_ref(j);
            srv_sched_finish(j, SRV_JOB_FAILED, &e);
            srv_job_unref(j);
        }
    }
    struct srv_job *prev = NULL;
    for (struct srv_job *j = g->table_head, *next; j; j = next) {
        next = j->t_next;
        if (srv_job_state_terminal(j->state) && now >= j->expires_at) table_remove_after(g, prev);
        else prev = j;
    }
    pthread_mutex_unlock(&g->lock);
}

int srv_sched_room(void) {
    struct srv_sched *g = &srv_sched_g;
    pthread_mutex_lock(&g->lock);
    long room = (long)(g->n_workers - g->n_failed_workers) * g->opts.max_batch - g->images_in_flight;
    for (const struct srv_job *j = g->queue.head; j; j = j->q_next) room -= j->n;
    int ok = !g->draining && !g->stopping && room > 0;
    pthread_mutex_unlock(&g->lock);
    return ok;
}

int srv_sched_device_failed(void) {
    pthread_mutex_lock(&srv_sched_g.lock);
    int f = srv_sched_g.n_failed_workers > 0;
    pthread_mutex_unlock(&srv_sched_g.lock);
    return f;
}

void srv_sched_gauges(struct srv_metrics_gauges *gg) {
    struct srv_sched *g = &srv_sched_g;
    pthread_mutex_lock(&g->lock);
    gg->queue_depth = g->queue.len;
    gg->images_in_flight = g->images_in_flight;
    gg->jobs_stored = g->table_len;
    gg->device_failed = g->n_failed_workers > 0;
    gg->draining = g->draining;
    gg->max_batch = g->opts.max_batch;
    gg->max_queue = g->opts.max_queue;
    pthread_mutex_unlock(&g->lock);
}

const char *srv_sched_describe(void) { return srv_sched_g.describe; }

/* ---- start and stop --------------------------------------------------------------------- */

static int worker_init(struct srv_worker *w, int index, int device, char *err, size_t err_size) {
    struct srv_sched *g = &srv_sched_g;
    const struct srv_models *models = g->opts.models;
    edm_error eerr;
    edm_backend_options bo = g->opts.backend;
    bo.device = device;
    /* every worker on the backend that "auto" chose for the first */
    if (index > 0) bo.name = edm_backend_name(g->workers[0].backend);
    w->index = index;
    w->device = device;
    if (edm_backend_new(&bo, &w->backend, &eerr) != EDM_OK) {
        snprintf(err, err_size, "backend (device %d): %s", device, eerr.message);
        return -1;
    }
    w->den = calloc((size_t)models->n, sizeof *w->den);
    if (!w->den) {
        snprintf(err, err_size, "out of memory");
        return -1;
    }
    for (int m = 0; m < models->n; m++)
        if (edm_denoiser_new(models->items[m].model, w->backend, g->opts.max_batch, &w->den[m], &eerr) !=
            EDM_OK) {
            snprintf(err, err_size, "model %s on %s: %s", models->items[m].name,
                     edm_backend_describe(w->backend), eerr.message);
            return -1;
        }
    return 0;
}

static void worker_clear(struct srv_worker *w) {
    const struct srv_models *models = srv_sched_g.opts.models;
    if (w->den)
        for (int m = 0; m < models->n; m++) edm_denoiser_free(w->den[m]);
    free(w->den);
    edm_backend_free(w->backend);
    memset(w, 0, sizeof *w);
}

int srv_sched_start(const struct srv_sched_options *opts, char *err, size_t err_size) {
    struct srv_sched *g = &srv_sched_g;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g->work, NULL);
    pthread_cond_init(&g->encode, NULL);
    pthread_cond_init(&g->idle, &ca);
    pthread_condattr_destroy(&ca);
    g->opts = *opts;
    int n = opts->n_devices > 0 ? opts->n_devices : 1;
    g->workers = calloc((size_t)n, sizeof *g->workers);
    g->encoders = calloc((size_t)opts->encode_threads, sizeof *g->encoders);
    if (!g->workers || !g->encoders) {
        snprintf(err, err_size, "out of memory");
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        if (worker_init(&g->workers[i], i, opts->n_devices > 0 ? opts->devices[i] : 0, err, err_size)) {
            worker_clear(&g->workers[i]);
            goto fail;
        }
        g->n_workers = i + 1;
    }
    snprintf(g->describe, sizeof g->describe, "%d worker%s: %s", g->n_workers,
             g->n_workers == 1 ? "" : "s", edm_backend_describe(g->workers[0].backend));
    for (int i = 0; i < g->n_workers; i++) {
        if (pthread_create(&g->workers[i].thread, NULL, srv_worker_main, &g->workers[i])) {
            snprintf(err, err_size, "cannot start a worker thread");
            goto fail;
        }
        g->workers[i].started = 1;
    }
    for (int i = 0; i < opts->encode_threads; i++) {
        if (pthread_create(&g->encoders[i], NULL, srv_encoder_main, NULL)) {
            snprintf(err, err_size, "cannot start an encoder thread");
            goto fail;
        }
        g->n_encoders = i + 1;
    }
    return 0;
fail:
    srv_sched_stop();
    return -1;
}

static void drop_list(struct srv_job_list *l) {
    struct srv_job *j;
    while ((j = srv_job_list_pop(l)) != NULL) {
        j->in_queue = 0;
        srv_job_unref(j);
    }
}

void srv_sched_stop(void) {
    struct srv_sched *g = &srv_sched_g;
    pthread_mutex_lock(&g->lock);
    g->stopping = 1;
    pthread_cond_broadcast(&g->work);
    pthread_cond_broadcast(&g->encode);
    pthread_mutex_unlock(&g->lock);
    for (int i = 0; i < g->n_workers; i++)
        if (g->workers[i].started) pthread_join(g->workers[i].thread, NULL);
    for (int i = 0; i < g->n_encoders; i++) pthread_join(g->encoders[i], NULL);
    pthread_mutex_lock(&g->lock);
    drop_list(&g->queue);
    drop_list(&g->encode_queue);
    while (g->table_head) table_remove_after(g, NULL);
    pthread_mutex_unlock(&g->lock);
    for (int i = 0; i < g->n_workers; i++) worker_clear(&g->workers[i]);
    free(g->workers);
    free(g->encoders);
    g->workers = NULL;
    g->encoders = NULL;
    g->n_workers = g->n_encoders = 0;
}
