/*
 * jobstore_redis.c - the Redis job store (jobstore.h): one queue and one result store shared
 * by a fleet of edmd replicas, with hiredis (Debian's libhiredis).
 *
 * Keys (the scripts of redis_scripts.h keep them consistent):
 *   edm:jobs             the queue: a stream with one entry {id} per unfinished job, read
 *                        through the consumer group "edmd" (one consumer per edmd process).
 *                        An entry is deleted when its job ends, so XLEN counts unfinished
 *                        jobs and the group's pending list the running ones.
 *   edm:job:ID           the record (hash): request (the body, seeds filled in), state,
 *                        attempt, owner, progress, deadline, error or result
 *   edm:job:ID:images    the PNGs of a completed job (hash: index -> bytes)
 *   edm:job:ID:events    its history (stream): running, progress per step, restart,
 *                        requeued, completed | failed | cancelled; event streams read it
 *   edm:job:ID:lease     "CONSUMER ATTEMPT" with an expiry of job-lease (PX), renewed by the
 *                        replica that runs the job
 *   edm:idem:KEY         "ID SHA": the job an Idempotency-Key made, and its body's SHA-256
 *   edm:cancels          ids of cancelled jobs (a capped stream) that every replica reads,
 *                        so that a running job stops within a step wherever it runs
 * A job's keys expire job-ttl seconds after it ends (before that: its deadline + job-ttl).
 *
 * A job's life: POST records and enqueues it (CREATE). A replica whose workers have room
 * (srv_sched_room) takes an entry (XREADGROUP) and acquires it (ACQUIRE: attempt + 1, lease
 * set), then runs it as a local job marked durable. The publisher thread writes its
 * progress (PROGRESS), renews its lease every job-lease/3 (RENEW, which also resets the
 * entry's idle time) and writes its outcome (END: only for the current attempt of a job not
 * yet ended; acks and deletes the entry). A replica that dies stops renewing: job-lease
 * later its entries are idle long enough for XAUTOCLAIM, and any replica with room claims
 * and acquires them again. The run starts over with the same seeds, hence the same pixels.
 * A result from a run whose attempt is no longer the record's is refused: exactly one
 * completion per job. DELETE writes the cancellation itself (CANCEL) and announces it on
 * edm:cancels; the runner's follower thread stops the local run at once, and a missed
 * announcement is caught by the next renewal ('ended').
 *
 * Threads and connections: HTTP handlers borrow a connection from a small pool (each call
 * is bounded: 1 s to connect, 2 s per command); the puller, the publisher and the follower
 * have one each. No Redis call is made under the scheduler lock or on a compute worker:
 * the scheduler only marks a durable job changed (redis_changed) and the publisher does the
 * rest. While Redis cannot be reached, job requests get 503 job_store_unavailable, /readyz
 * says why (api_status.c: 503 until Redis was reached once, then only with
 * ready-needs-job-store = 1), jobs finished here wait in the publisher's list, and the
 * connections retry with backoff (0.1 s doubling to 2 s; at once when another connection is
 * up again). Not supported: Redis Cluster (the scripts touch keys of
 * several jobs), TLS.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jobstore.h"
#include "redis_scripts.h"
#include "scheduler.h"

#define GROUP "edmd"
#define QUEUE "edm:jobs"
#define CANCELS "edm:cancels"
#define CONNECT_TIMEOUT_MS 1000
#define COMMAND_TIMEOUT_MS 2000
#define BLOCK_MS 500           /* a blocking read of the puller or the follower */
#define FORGET_CONSUMER_MS 3600000 /* a consumer idle this long with nothing pending is gone */

enum script { S_CREATE, S_ACQUIRE, S_PROGRESS, S_RENEW, S_END, S_CANCEL, S_STATS, S_COUNT };
static const char *const script_text[S_COUNT] = {
    LUA_PRELUDE LUA_CREATE, LUA_PRELUDE LUA_ACQUIRE, LUA_PRELUDE LUA_PROGRESS, LUA_PRELUDE LUA_RENEW,
    LUA_PRELUDE LUA_END,    LUA_PRELUDE LUA_CANCEL,  LUA_PRELUDE LUA_STATS,
};

/* One connection: reconnected on use after a failure, no sooner than its backoff allows. */
struct rconn {
    redisContext *c;
    int block_ms;          /* longest blocking read made on it (its timeout allows for it) */
    uint64_t retry_at;     /* monotonic ns */
    int backoff_ms;
    int fresh;             /* connected, no command answered yet */
    int timed_out;         /* the last failure was a timeout: Redis may have done it */
};

/* An event stream being followed (sse.c through follow/unfollow). */
struct mirror {
    struct srv_job *job; /* a view, a reference */
    char key[96], last[48];
    struct mirror *next;
};

static struct {
    /* configuration (set by open, read-only afterwards) */
    char host[256], user[128], password[256];
    int port, db;
    double lease_s, ttl_s;
    long max_jobs;
    const struct srv_models *models;
    const struct srv_req_limits *limits;
    char consumer[96];
    int opened, started;

    pthread_mutex_t lock; /* everything below; taken after the scheduler lock, never before */
    pthread_cond_t wake, flushed, pool_free; /* timed waits: CLOCK_MONOTONIC (wait_ms) */
    char sha[S_COUNT][41];
    atomic_int up;
    atomic_int reached; /* up at least once since start */
    char why[256];
    struct rconn pool[8];
    int pool_busy[8], pool_n;
    struct srv_job **held; /* durable jobs of this replica whose outcome is not written yet */
    int n_held, cap_held;
    struct srv_job *out_head, *out_tail; /* jobs to publish (store_next), a reference each */
    int publishing;                       /* the publisher holds jobs taken off the list */
    struct mirror *mirrors;
    int stop, pulling;
    long st_unfinished, st_running, st_oldest_ms;
    pthread_t puller, publisher, follower;
    int threads;
} R = {.lock = PTHREAD_MUTEX_INITIALIZER}; /* the conditions: r_open (on the monotonic clock) */

static atomic_long n_pulled, n_reclaimed, n_completed, n_discarded, n_lost, n_handed_back;

/* ---- up and down ------------------------------------------------------------------------- */

static void store_down(const char *why) {
    pthread_mutex_lock(&R.lock);
    int was = atomic_exchange(&R.up, 0);
    snprintf(R.why, sizeof R.why, "%s", why);
    pthread_mutex_unlock(&R.lock);
    if (was) fprintf(stderr, "edmd: job store: redis %s:%d unavailable: %s\n", R.host, R.port, why);
}

static void store_up(void) {
    atomic_store(&R.reached, 1);
    if (!atomic_exchange(&R.up, 1))
        fprintf(stderr, "edmd: job store: connected to redis %s:%d (consumer %s)\n", R.host, R.port, R.consumer);
}

static struct timeval ms_tv(int ms) { return (struct timeval){ms / 1000, (ms % 1000) * 1000}; }

static void wait_ms(pthread_cond_t *cond, int ms) { /* [R.lock] */
    struct timespec until = srv_deadline_after((uint64_t)ms * 1000000u);
    pthread_cond_timedwait(cond, &R.lock, &until);
}

/* ---- connections and commands ------------------------------------------------------------ */

static void rconn_drop(struct rconn *rc, const char *reason) {
    char why[256]; /* the reason may be the context's own errstr */
    snprintf(why, sizeof why, "%s", reason && *reason ? reason : "connection lost");
    if (rc->c) redisFree(rc->c);
    rc->c = NULL;
    rc->backoff_ms = rc->backoff_ms ? (rc->backoff_ms * 2 > 2000 ? 2000 : rc->backoff_ms * 2) : 100;
    rc->retry_at = srv_now_ns() + (uint64_t)rc->backoff_ms * 1000000u;
    store_down(why);
}

static int is_error(const redisReply *r) { return !r || r->type == REDIS_REPLY_ERROR; }

/* A command failed on the connection: it is dropped, noting whether it timed out. */
static void rconn_failed(struct rconn *rc) {
    rc->timed_out = rc->c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    rconn_drop(rc, rc->c->errstr);
}

/* Sends one command; NULL when the connection failed (it is dropped). An error reply is
 * returned as it is. */
static redisReply *rconn_argv(struct rconn *rc, int argc, const char **argv, const size_t *lens) {
    if (!rc->c) return NULL;
    redisReply *r = redisCommandArgv(rc->c, argc, argv, lens);
    if (!r) rconn_failed(rc);
    else rc->fresh = 0;
    return r;
}

static redisReply *rconn_cmd(struct rconn *rc, int argc, const char **argv) {
    return rconn_argv(rc, argc, argv, NULL);
}

/* Makes sure the connection is open (AUTH, SELECT, the group exists); 0 when it is. */
static int rconn_ready(struct rconn *rc) {
    if (rc->c) return 0;
    /* the backoff spares a Redis that is down; once another connection is up, try at once
     * (else a request right after an outage got 503 from a connection still waiting) */
    if (srv_now_ns() < rc->retry_at && !atomic_load(&R.up)) return -1;
    struct timeval tv = ms_tv(CONNECT_TIMEOUT_MS);
    rc->c = redisConnectWithTimeout(R.host, R.port, tv);
    if (!rc->c || rc->c->err) {
        char why[256];
        snprintf(why, sizeof why, "connect: %s", rc->c ? rc->c->errstr : "out of memory");
        rconn_drop(rc, why);
        return -1;
    }
    redisSetTimeout(rc->c, ms_tv(COMMAND_TIMEOUT_MS + rc->block_ms));
    char db[16];
    snprintf(db, sizeof db, "%d", R.db);
    /* AUTH [user] password, SELECT db, and the consumer group (BUSYGROUP: it exists) */
    const char *setup[3][6] = {{"AUTH", R.user[0] ? R.user : R.password, R.password},
                               {"SELECT", db},
                               {"XGROUP", "CREATE", QUEUE, GROUP, "0", "MKSTREAM"}};
    const int argc[3] = {R.user[0] ? 3 : 2, 2, 6}, skip[3] = {!R.password[0], R.db == 0, 0};
    for (int i = 0; i < 3; i++) {
        if (skip[i]) continue;
        redisReply *r = rconn_cmd(rc, argc[i], setup[i]);
        if (!r) return -1;
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
            char why[256];
            snprintf(why, sizeof why, "%s: %s", setup[i][0], r->str);
            freeReplyObject(r);
            rconn_drop(rc, why);
            return -1;
        }
        freeReplyObject(r);
    }
    rc->backoff_ms = 0;
    rc->fresh = 1;
    rc->timed_out = 0;
    store_up();
    return 0;
}

/* After a failure on a connection that had answered before (a restarted Redis leaves every
 * idle connection broken): one fresh try at once, unless the call timed out (Redis may have
 * carried it out). 0 when connected again. */
static int rconn_retry(struct rconn *rc) {
    if (rc->timed_out) return -1;
    rc->retry_at = 0;
    return rconn_ready(rc);
}

/* Arguments of one command, growing as needed (a completed job's END carries its PNGs). */
struct rargs {
    int n, cap;
    const char **v;
    size_t *len;
    char (*num)[24];        /* a number argument i is written in num[i] */
    unsigned char *is_num;
    int failed;
};

static void args_clear(struct rargs *a) {
    free(a->v);
    free(a->len);
    free(a->num);
    free(a->is_num);
    memset(a, 0, sizeof *a);
}

/* Room for one more argument; 0 when there is. */
static int args_room(struct rargs *a) {
    if (a->failed) return -1;
    if (a->n < a->cap) return 0;
    int cap = a->cap ? a->cap * 2 : 16;
    const char **v = realloc(a->v, sizeof *v * (size_t)cap);
    if (v) a->v = v;
    size_t *len = realloc(a->len, sizeof *len * (size_t)cap);
    if (len) a->len = len;
    char(*num)[24] = realloc(a->num, sizeof *num * (size_t)cap);
    if (num) a->num = num;
    unsigned char *is_num = realloc(a->is_num, (size_t)cap);
    if (is_num) a->is_num = is_num;
    if (!v || !len || !num || !is_num) return a->failed = -1;
    for (int i = 0; i < a->n; i++) /* the numbers may have moved */
        if (a->is_num[i]) a->v[i] = a->num[i];
    a->cap = cap;
    return 0;
}

static void arg_bytes(struct rargs *a, const void *p, size_t n) {
    if (args_room(a)) return;
    a->is_num[a->n] = 0;
    a->v[a->n] = p;
    a->len[a->n++] = n;
}

static void arg(struct rargs *a, const char *s) { arg_bytes(a, s, strlen(s)); }

static void arg_int(struct rargs *a, long long x) {
    if (args_room(a)) return;
    snprintf(a->num[a->n], sizeof a->num[a->n], "%lld", x);
    arg(a, a->num[a->n]);
    a->is_num[a->n - 1] = 1;
}

/* EVALSHA of the script, loading it first when this process has not yet (a restarted Redis
 * has forgotten every script: NOSCRIPT, load and run again). NULL when the connection failed. */
static redisReply *script_once(struct rconn *rc, enum script s, const char *nkeys, struct rargs *a) {
    char sha[41];
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&R.lock);
        memcpy(sha, R.sha[s], sizeof sha);
        pthread_mutex_unlock(&R.lock);
        if (!sha[0]) {
            const char *load[] = {"SCRIPT", "LOAD", script_text[s]};
            redisReply *lr = rconn_cmd(rc, 3, load);
            if (is_error(lr) || lr->type != REDIS_REPLY_STRING) return lr;
            pthread_mutex_lock(&R.lock);
            snprintf(R.sha[s], sizeof R.sha[s], "%s", lr->str);
            memcpy(sha, R.sha[s], sizeof sha);
            pthread_mutex_unlock(&R.lock);
            freeReplyObject(lr);
        }
        struct rargs call = {0};
        arg(&call, "EVALSHA"), arg(&call, sha), arg(&call, nkeys);
        for (int i = 0; i < a->n; i++) arg_bytes(&call, a->v[i], a->len[i]);
        redisReply *r = call.failed ? NULL : rconn_argv(rc, call.n, call.v, call.len);
        args_clear(&call);
        if (!r || r->type != REDIS_REPLY_ERROR || strncmp(r->str, "NOSCRIPT", 8) != 0) return r;
        freeReplyObject(r);
        pthread_mutex_lock(&R.lock);
        R.sha[s][0] = '\0';
        pthread_mutex_unlock(&R.lock);
    }
    return NULL;
}

/* Runs a script whose first `nkeys` arguments of a are its keys. An error reply is logged
 * and returned; NULL when Redis could not be reached. */
static redisReply *run_script(struct rconn *rc, enum script s, int nkeys, struct rargs *a) {
    int may_retry = rc->c && !rc->fresh;
    if (a->failed || rconn_ready(rc)) return NULL;
    char nk[16];
    snprintf(nk, sizeof nk, "%d", nkeys);
    redisReply *r = script_once(rc, s, nk, a);
    if (!r && may_retry && !rconn_retry(rc)) r = script_once(rc, s, nk, a);
    if (r && r->type == REDIS_REPLY_ERROR) fprintf(stderr, "edmd: job store: script %d: %s\n", (int)s, r->str);
    return r;
}

/* ---- the connection pool of the HTTP threads --------------------------------------------- */

static struct rconn *pool_get(struct srv_error *err) {
    struct rconn *rc = NULL;
    pthread_mutex_lock(&R.lock);
    uint64_t until = srv_now_ns() + (uint64_t)COMMAND_TIMEOUT_MS * 1000000u;
    while (!rc) {
        for (int i = 0; i < R.pool_n && !rc; i++)
            if (!R.pool_busy[i]) {
                R.pool_busy[i] = 1;
                rc = &R.pool[i];
            }
        if (rc || srv_now_ns() >= until) break;
        wait_ms(&R.pool_free, 50);
    }
    int up = atomic_load(&R.up);
    char why[256];
    snprintf(why, sizeof why, "%s", R.why);
    pthread_mutex_unlock(&R.lock);
    if (!rc) {
        srv_error_set(err, SRV_E_STORE_UNAVAILABLE, NULL, "the job store is busy; retry");
        return NULL;
    }
    /* while the store is down, fail fast: the publisher's connection finds it back */
    if ((!up && !rc->c) || rconn_ready(rc)) {
        srv_error_set(err, SRV_E_STORE_UNAVAILABLE, NULL, "the job store is unavailable: %s", why);
        pthread_mutex_lock(&R.lock);
        R.pool_busy[rc - R.pool] = 0;
        pthread_cond_signal(&R.pool_free);
        pthread_mutex_unlock(&R.lock);
        return NULL;
    }
    return rc;
}

static void pool_put(struct rconn *rc) {
    pthread_mutex_lock(&R.lock);
    R.pool_busy[rc - R.pool] = 0;
    pthread_cond_signal(&R.pool_free);
    pthread_mutex_unlock(&R.lock);
}

/* A script on a connection of the pool. NULL with err set when none could be had; else the
 * reply (NULL when Redis could not be reached meanwhile: see unavailable). */
static redisReply *pooled_script(enum script s, int nkeys, struct rargs *a, int *had_conn, struct srv_error *err) {
    struct rconn *rc = pool_get(err);
    *had_conn = rc != NULL;
    if (!rc) return NULL;
    redisReply *r = run_script(rc, s, nkeys, a);
    pool_put(rc);
    return r;
}

static enum srv_err unavailable(struct srv_error *err) {
    char why[256];
    pthread_mutex_lock(&R.lock);
    snprintf(why, sizeof why, "%s", atomic_load(&R.up) ? "redis answered with an error" : R.why);
    pthread_mutex_unlock(&R.lock);
    return srv_error_set(err, SRV_E_STORE_UNAVAILABLE, NULL, "the job store is unavailable: %s", why);
}

/* ---- records and views -------------------------------------------------------------------- */

static void key_of(char *out, size_t size, const char *id, const char *suffix) {
    snprintf(out, size, "edm:job:%s%s", id, suffix);
}

/* The value of `field` in an HGETALL reply, or NULL. */
static const redisReply *hfield(const redisReply *h, const char *field) {
    if (!h || h->type != REDIS_REPLY_ARRAY) return NULL;
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, field) == 0)
            return h->element[i + 1]->type == REDIS_REPLY_STRING ? h->element[i + 1] : NULL;
    return NULL;
}

static const char *hstr(const redisReply *h, const char *field) {
    const redisReply *v = hfield(h, field);
    return v ? v->str : "";
}

static long long hint(const redisReply *h, const char *field) { return atoll(hstr(h, field)); }

static const char *jstr(const json_t *o, const char *key) {
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static enum srv_job_state state_parse(const char *s) {
    for (int k = SRV_JOB_QUEUED; k <= SRV_JOB_CANCELLED; k++)
        if (strcmp(srv_job_state_name((enum srv_job_state)k), s) == 0) return (enum srv_job_state)k;
    return SRV_JOB_FAILED;
}

/* [sched lock for a followed view] The record's state, error and result into a view; its
 * progress too unless the view is followed (then the events stream is its progress). */
static void view_update(struct srv_job *job, const redisReply *h, int progress) {
    job->state = state_parse(hstr(h, "state"));
    if (hint(h, "t_started")) job->t_started = 1; /* the "running" of its event stream was */
    if (progress) {
        job->step_done = (int)hint(h, "step_done");
        if (job->step_done > job->steps) job->step_done = job->steps;
        job->nfe_done = (long)hint(h, "nfe_done");
    }
    json_t *e = json_loads(hstr(h, "error"), 0, NULL);
    if (e) {
        srv_error_set(&job->error, srv_error_code_parse(jstr(e, "code")), json_string_value(json_object_get(e, "param")),
                      "%s", jstr(e, "message"));
        json_decref(e);
    }
    json_t *res = job->state == SRV_JOB_COMPLETED && !job->results ? json_loads(hstr(h, "result"), 0, NULL) : NULL;
    json_t *data = json_object_get(res, "data");
    if (json_array_size(data) == (size_t)job->n && (job->results = calloc((size_t)job->n, sizeof *job->results))) {
        for (int i = 0; i < job->n; i++) {
            json_t *d = json_array_get(data, (size_t)i);
            json_t *label = json_object_get(d, "class_label");
            job->results[i].seed = (uint64_t)json_integer_value(json_object_get(d, "seed"));
            job->results[i].class_label = json_is_integer(label) ? (int)json_integer_value(label) : -1;
            job->results[i].nfe = (int)json_integer_value(json_object_get(d, "nfe"));
        }
        json_t *t = json_object_get(res, "timings"), *b = json_object_get(res, "batch");
        const char *names[4] = {"queue_ms", "sampling_ms", "encode_ms", "total_ms"};
        for (int k = 0; k < 4; k++) job->view_timings[k] = json_number_value(json_object_get(t, names[k]));
        job->view_batch_mean = json_number_value(json_object_get(b, "mean_size"));
        job->batch_max = (int)json_integer_value(json_object_get(b, "max_size"));
    }
    json_decref(res);
}

/* A view of the record h (an HGETALL reply); NULL when h is empty or not a job. */
static struct srv_job *view_new(const redisReply *h) {
    const char *id = hstr(h, "id");
    int n = (int)hint(h, "n"), steps = (int)hint(h, "steps");
    if (!*id || n < 1 || steps < 1) return NULL;
    struct srv_job *job = srv_job_view_new(id, hstr(h, "model"), n, steps, (int)hint(h, "nfe"));
    if (!job) return NULL;
    job->created = (int64_t)hint(h, "created");
    view_update(job, h, 1);
    return job;
}

/* The PNGs into a completed view: an HGETALL reply of the images (index, bytes, ...), or
 * the HMGET reply of image `one` (missing ones stay empty). */
static void view_images(struct srv_job *job, const redisReply *imgs, int one) {
    if (!job->results || !imgs || imgs->type != REDIS_REPLY_ARRAY) return;
    int pairs = one < 0;
    for (size_t k = 0; k + (size_t)pairs < imgs->elements; k += 1 + (size_t)pairs) {
        const redisReply *p = imgs->element[k + (size_t)pairs];
        int i = pairs ? atoi(imgs->element[k]->str ? imgs->element[k]->str : "-1") : one;
        if (i < 0 || i >= job->n || p->type != REDIS_REPLY_STRING) continue;
        struct srv_image_result *img = &job->results[i];
        if (img->png || !(img->png = malloc(p->len ? p->len : 1))) continue;
        memcpy(img->png, p->str, p->len);
        img->png_len = p->len;
    }
}

/* ---- API: create, get, cancel ------------------------------------------------------------- */

/* The body another replica will run: the client's, with the seeds that were chosen and the
 * model named (the fleet's default model could differ). */
static char *canonical_body(const struct srv_job *job, const char *body, size_t len) {
    json_t *o = len ? json_loadb(body, len, 0, NULL) : json_object();
    json_t *seeds = json_array();
    for (int i = 0; i < job->n && seeds; i++) json_array_append_new(seeds, json_integer((json_int_t)job->req.seeds[i]));
    char *out = NULL;
    if (o) json_object_del(o, "seed"); /* -1 when absent */
    if (o && seeds && !json_object_set(o, "seeds", seeds) &&
        !json_object_set_new(o, "model", json_string(job->model->name)))
        out = json_dumps(o, JSON_COMPACT);
    json_decref(seeds);
    json_decref(o);
    return out;
}

static enum srv_err r_get(const char *id, int images, struct srv_job **out, struct srv_error *err);

/* An error as the record keeps it: {"code", "message", "param"} (a new string, or NULL). */
static char *error_record(const struct srv_error *e) {
    char *text = srv_error_json(e, NULL);
    json_t *o = text ? json_loads(text, 0, NULL) : NULL;
    char *inner = o ? json_dumps(json_object_get(o, "error"), JSON_COMPACT) : NULL;
    json_decref(o);
    free(text);
    return inner;
}

static enum srv_err r_create(struct srv_job *job, const char *body, size_t len, struct srv_job **out, int *replayed,
                             struct srv_error *err) {
    *out = NULL;
    *replayed = 0;
    char *request = canonical_body(job, body, len);
    if (!request) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
    char rec[128], idem[96];
    key_of(rec, sizeof rec, job->id, "");
    snprintf(idem, sizeof idem, "edm:idem:%s", job->idem_key);
    struct rargs a = {0};
    arg(&a, rec), arg(&a, QUEUE), arg(&a, idem);
    arg(&a, job->id), arg_int(&a, job->req.timeout_ms), arg_int(&a, (long long)(R.ttl_s + 0.5)), arg(&a, job->idem_key);
    arg_int(&a, R.max_jobs), arg(&a, job->idem_sha);
    arg(&a, "model"), arg(&a, job->model->name), arg(&a, "n"), arg_int(&a, job->n), arg(&a, "steps");
    arg_int(&a, job->steps), arg(&a, "nfe"), arg_int(&a, job->nfe_per_image), arg(&a, "created");
    arg_int(&a, job->created), arg(&a, "request"), arg(&a, request);
    enum srv_err rc = SRV_OK;
    int had_conn;
    redisReply *r = pooled_script(S_CREATE, 3, &a, &had_conn, err);
    args_clear(&a);
    free(request);
    if (!had_conn) return err->code;
    if (is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        rc = unavailable(err);
    } else if (strcmp(r->element[0]->str, "existing") == 0) {
        rc = r_get(r->element[1]->str, SRV_STORE_ALL_IMAGES, out, err);
        *replayed = rc == SRV_OK;
    } else if (strcmp(r->element[0]->str, "reused") == 0) {
        rc = srv_error_set(err, SRV_E_IDEM_REUSED, "Idempotency-Key",
                           "this Idempotency-Key made job %s from another request body", r->element[1]->str);
    } else if (strcmp(r->element[0]->str, "full") == 0) {
        rc = srv_error_set(err, SRV_E_QUEUE_FULL, NULL, "too many unfinished jobs in the shared queue (%ld)",
                           R.max_jobs);
    } else {
        *out = srv_job_ref(job);
    }
    freeReplyObject(r);
    return rc;
}

/* HGETALL of the record and, pipelined with it, of the images (or HMGET of one); 0, or -1
 * when the connection failed. */
static int get_once(struct rconn *rc, const char *id, int images, redisReply **h, redisReply **p) {
    char rec[128], img[128], index[16];
    key_of(rec, sizeof rec, id, "");
    key_of(img, sizeof img, id, ":images");
    snprintf(index, sizeof index, "%d", images);
    const char *all[] = {"HGETALL", rec}, *pngs[] = {images >= 0 ? "HMGET" : "HGETALL", img, index};
    int more = images != SRV_STORE_NO_IMAGES;
    *h = *p = NULL;
    if (redisAppendCommandArgv(rc->c, 2, all, NULL) == REDIS_OK &&
        (!more || redisAppendCommandArgv(rc->c, images >= 0 ? 3 : 2, pngs, NULL) == REDIS_OK) &&
        redisGetReply(rc->c, (void **)h) == REDIS_OK && (!more || redisGetReply(rc->c, (void **)p) == REDIS_OK)) {
        rc->fresh = 0;
        return 0;
    }
    freeReplyObject(*h);
    *h = NULL;
    rconn_failed(rc);
    return -1;
}

static enum srv_err r_get(const char *id, int images, struct srv_job **out, struct srv_error *err) {
    *out = NULL;
    struct rconn *rc = pool_get(err);
    if (!rc) return err->code;
    enum srv_err ret = SRV_OK;
    redisReply *h = NULL, *p = NULL;
    int may_retry = !rc->fresh, failed = get_once(rc, id, images, &h, &p);
    if (failed && may_retry && !rconn_retry(rc)) failed = get_once(rc, id, images, &h, &p);
    if (failed || is_error(h) || (p && p->type == REDIS_REPLY_ERROR)) ret = unavailable(err);
    else if (!(*out = view_new(h))) ret = srv_jobstore_not_found(id, err);
    else view_images(*out, p, images);
    pool_put(rc);
    freeReplyObject(h);
    freeReplyObject(p);
    return ret;
}

static enum srv_err r_cancel(const char *id, struct srv_job **out, struct srv_error *err) {
    *out = NULL;
    char rec[128], lease[128], events[128];
    key_of(rec, sizeof rec, id, "");
    key_of(lease, sizeof lease, id, ":lease");
    key_of(events, sizeof events, id, ":events");
    struct srv_error why;
    srv_error_set(&why, SRV_E_CANCELLED, NULL, "cancelled by DELETE");
    char *inner = error_record(&why);
    struct rargs a = {0};
    arg(&a, rec), arg(&a, lease), arg(&a, QUEUE), arg(&a, events), arg(&a, CANCELS);
    arg(&a, GROUP), arg_int(&a, (long long)(R.ttl_s + 0.5)), arg(&a, inner ? inner : "{}"), arg(&a, id);
    int had_conn;
    redisReply *r = pooled_script(S_CANCEL, 5, &a, &had_conn, err);
    args_clear(&a);
    free(inner);
    if (!had_conn) return err->code;
    enum srv_err ret = SRV_OK;
    if (is_error(r) || r->type != REDIS_REPLY_ARRAY || r->elements < 1) ret = unavailable(err);
    else if (strcmp(r->element[0]->str, "gone") == 0 || r->elements < 2 || !(*out = view_new(r->element[1])))
        ret = srv_jobstore_not_found(id, err);
    else if (strcmp(r->element[0]->str, "ended") == 0) ret = srv_jobstore_ended(*out, err);
    freeReplyObject(r);
    return ret;
}

/* ---- event streams: follow a job wherever it runs ----------------------------------------- */

/* [sched lock] One entry of a job's events stream into a followed view. Returns 1 when the
 * job ended (the record must be read for its outcome). */
static int mirror_event(struct srv_job *job, const redisReply *fields) {
    const char *t = "", *step = NULL, *nfe = NULL, *attempt = NULL;
    for (size_t i = 0; fields && i + 1 < fields->elements; i += 2) {
        const char *k = fields->element[i]->str, *v = fields->element[i + 1]->str;
        if (!k || !v) continue;
        if (strcmp(k, "t") == 0) t = v;
        else if (strcmp(k, "step") == 0) step = v;
        else if (strcmp(k, "nfe") == 0) nfe = v;
        else if (strcmp(k, "attempt") == 0) attempt = v;
    }
    if (strcmp(t, "running") == 0) {
        job->t_started = 1;
        if (attempt && atol(attempt) > job->view_attempt) job->view_attempt = atol(attempt);
    } else if (strcmp(t, "progress") == 0 && step && nfe) {
        /* a rerun (after a replica died) starts at step 1 again: those steps were told */
        int k = atoi(step);
        if (k > job->step_done && k <= job->steps) {
            for (int j = job->step_done + 1; j <= k; j++) job->nfe_at_step[j] = atol(nfe);
            job->step_done = k;
            job->nfe_done = atol(nfe);
        }
    } else if (strcmp(t, "completed") == 0 || strcmp(t, "failed") == 0 || strcmp(t, "cancelled") == 0) {
        return 1;
    }
    return 0;
}

/* XRANGE/XREAD entries ([[id, [fields]], ...]) into a followed view; its last id into last.
 * Returns 1 when the job ended. */
static int mirror_entries(struct srv_job *job, const redisReply *entries, char *last, size_t last_size) {
    int ended = 0;
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING) continue;
        snprintf(last, last_size, "%s", e->element[0]->str);
        ended |= mirror_event(job, e->element[1]);
    }
    return ended;
}

static enum srv_err r_follow(const char *id, struct srv_job **out, struct srv_error *err) {
    enum srv_err rc = r_get(id, SRV_STORE_NO_IMAGES, out, err);
    if (rc) return rc;
    struct srv_job *job = *out;
    struct mirror *m = calloc(1, sizeof *m);
    if (!m) return SRV_OK; /* the stream then says what the record says now */
    key_of(m->key, sizeof m->key, id, ":events");
    snprintf(m->last, sizeof m->last, "0-0");
    /* the history so far (the follower thread reads on from its last entry); when it ends
     * after the record was read, the record again for the outcome */
    job->step_done = 0, job->nfe_done = 0;
    char rec[128];
    key_of(rec, sizeof rec, id, "");
    const char *range[] = {"XRANGE", m->key, "-", "+"}, *all[] = {"HGETALL", rec};
    struct srv_error ignored;
    struct rconn *c = pool_get(&ignored);
    redisReply *r = c ? rconn_cmd(c, 4, range) : NULL, *h = NULL;
    if (!is_error(r) && mirror_entries(job, r, m->last, sizeof m->last) && !srv_job_state_terminal(job->state) &&
        !is_error(h = rconn_cmd(c, 2, all)))
        view_update(job, h, 0);
    if (c) pool_put(c);
    freeReplyObject(r);
    freeReplyObject(h);
    if (srv_job_state_terminal(job->state)) { /* nothing more will happen */
        free(m);
        return SRV_OK;
    }
    m->job = srv_job_ref(job);
    pthread_mutex_lock(&R.lock);
    m->next = R.mirrors;
    R.mirrors = m;
    pthread_mutex_unlock(&R.lock);
    return SRV_OK;
}

static void r_unfollow(struct srv_job *job) {
    struct mirror *gone = NULL;
    pthread_mutex_lock(&R.lock);
    for (struct mirror **pp = &R.mirrors; *pp; pp = &(*pp)->next)
        if ((*pp)->job == job) {
            gone = *pp;
            *pp = gone->next;
            break;
        }
    pthread_mutex_unlock(&R.lock);
    if (gone) srv_job_unref(gone->job);
    free(gone);
    srv_job_unref(job);
}

/* ---- durable jobs held here ---------------------------------------------------------------- */

static int held_add(struct srv_job *job) { /* [R.lock] */
    if (R.n_held == R.cap_held) {
        int cap = R.cap_held ? R.cap_held * 2 : 64;
        struct srv_job **h = realloc(R.held, sizeof *h * (size_t)cap);
        if (!h) return -1;
        R.held = h;
        R.cap_held = cap;
    }
    R.held[R.n_held++] = srv_job_ref(job);
    return 0;
}

static void held_remove(struct srv_job *job) {
    int found = 0;
    pthread_mutex_lock(&R.lock);
    for (int i = 0; i < R.n_held; i++)
        if (R.held[i] == job) {
            R.held[i] = R.held[--R.n_held];
            found = 1;
            break;
        }
    pthread_cond_broadcast(&R.flushed);
    pthread_mutex_unlock(&R.lock);
    if (found) srv_job_unref(job);
}

/* A copy of the held list, a reference each (free with unref_all). */
static struct srv_job **held_copy(int *n) {
    pthread_mutex_lock(&R.lock);
    struct srv_job **copy = malloc(sizeof *copy * (size_t)(R.n_held ? R.n_held : 1));
    *n = copy ? R.n_held : 0;
    for (int i = 0; i < *n; i++) copy[i] = srv_job_ref(R.held[i]);
    pthread_mutex_unlock(&R.lock);
    return copy;
}

static void unref_all(struct srv_job **jobs, int n) {
    for (int i = 0; i < n; i++) srv_job_unref(jobs[i]);
    free(jobs);
}

/* [sched lock] The run here is no longer the job's: stop it, write nothing more. */
static void drop_run(struct srv_job *job, const char *why) {
    job->store_flags |= SRV_STORE_LOST;
    if (!srv_job_state_terminal(job->state)) {
        atomic_fetch_add(&n_lost, 1);
        srv_sched_cancel(job, SRV_E_CANCELLED, why);
    }
}

/* Any replica: a held job by id, with a reference, or NULL. */
static struct srv_job *held_find(const char *id) {
    struct srv_job *found = NULL;
    pthread_mutex_lock(&R.lock);
    for (int i = 0; i < R.n_held && !found; i++)
        if (strcmp(R.held[i]->id, id) == 0) found = srv_job_ref(R.held[i]);
    pthread_mutex_unlock(&R.lock);
    return found;
}

static void r_changed(struct srv_job *job) { /* [sched lock] */
    pthread_mutex_lock(&R.lock);
    if (!job->store_next && R.out_tail != job) {
        srv_job_ref(job);
        if (R.out_tail) R.out_tail->store_next = job;
        else R.out_head = job;
        R.out_tail = job;
        pthread_cond_broadcast(&R.wake);
    }
    pthread_mutex_unlock(&R.lock);
}

/* ---- writing a run's outcome ------------------------------------------------------------- */

/* END for the run `attempt` of job `id` (redis_scripts.h): "ok", "lost", "ended" or "gone",
 * or NULL when it could not be written (Redis unreachable or an error: try again). */
static const char *end_run(struct rconn *rc, const char *id, const char *entry, long attempt, const char *mode,
                           const char *payload, const struct srv_image_result *res, int n) {
    char rec[128], lease[128], events[128], images[128];
    key_of(rec, sizeof rec, id, "");
    key_of(lease, sizeof lease, id, ":lease");
    key_of(events, sizeof events, id, ":events");
    key_of(images, sizeof images, id, ":images");
    struct rargs a = {0};
    arg(&a, rec), arg(&a, lease), arg(&a, QUEUE), arg(&a, events), arg(&a, images);
    arg(&a, GROUP), arg(&a, entry), arg_int(&a, attempt), arg_int(&a, (long long)(R.ttl_s + 0.5)), arg(&a, mode);
    arg(&a, payload), arg(&a, R.consumer), arg_int(&a, (long long)(R.lease_s * 1000) * 10);
    for (int i = 0; res && i < n; i++) arg_bytes(&a, res[i].png, res[i].png_len);
    redisReply *r = run_script(rc, S_END, 5, &a);
    args_clear(&a);
    static const char *const answers[] = {"ok", "lost", "ended", "gone"};
    const char *out = NULL;
    for (size_t k = 0; r && r->type == REDIS_REPLY_STRING && k < sizeof answers / sizeof answers[0]; k++)
        if (strcmp(r->str, answers[k]) == 0) out = answers[k];
    freeReplyObject(r);
    return out;
}

enum { PUB_DONE, PUB_RETRY };

/* Writes what changed of a durable job: its start and new steps (PROGRESS), and once it has
 * ended its outcome (END). */
static int publish(struct rconn *rc, struct srv_job *job) {
    srv_sched_lock();
    unsigned flags = job->store_flags;
    int running = job->t_started && !(flags & SRV_STORE_RUNNING);
    int from = job->store_sent_step, to = job->step_done;
    long nfe_done = job->nfe_done;
    long *at = to > from ? malloc(sizeof *at * (size_t)(to - from)) : NULL;
    for (int k = from + 1; at && k <= to; k++) at[k - from - 1] = job->nfe_at_step[k];
    struct srv_job_snapshot snap;
    srv_job_snapshot(job, &snap);
    srv_sched_unlock();
    int ended = srv_job_state_terminal(snap.state);
    if (flags & SRV_STORE_LOST) {
        free(at);
        if (ended) held_remove(job);
        return PUB_DONE;
    }
    if (running || (to > from && at)) {
        char rec[128], events[128];
        key_of(rec, sizeof rec, job->id, "");
        key_of(events, sizeof events, job->id, ":events");
        struct rargs a = {0};
        arg(&a, rec), arg(&a, events), arg_int(&a, job->attempt), arg(&a, running ? "1" : "0"), arg_int(&a, to);
        arg_int(&a, nfe_done);
        for (int k = from + 1; at && k <= to; k++) arg_int(&a, k), arg_int(&a, at[k - from - 1]);
        redisReply *r = run_script(rc, S_PROGRESS, 2, &a);
        args_clear(&a);
        int ours = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
        freeReplyObject(r);
        if (ours < 0) {
            free(at);
            return PUB_RETRY;
        }
        srv_sched_lock();
        if (ours) job->store_flags |= running ? SRV_STORE_RUNNING : 0;
        else drop_run(job, "another replica runs this job now");
        srv_sched_unlock();
        if (!ours) {
            free(at);
            return PUB_DONE; /* the cancellation brings it back, as lost */
        }
        job->store_sent_step = to;
    }
    free(at);
    if (!ended) return PUB_DONE;
    const char *mode = srv_job_state_name(snap.state);
    char *payload = NULL;
    if (snap.has_results) {
        json_t *res = srv_job_result_json(job, &snap, NULL, 0);
        payload = res ? json_dumps(res, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
        json_decref(res);
    } else {
        if (flags & SRV_STORE_HAND_BACK) mode = "release";
        payload = error_record(&snap.error);
    }
    if (!payload) return PUB_RETRY;
    const char *answer = end_run(rc, job->id, job->entry, job->attempt, mode, payload,
                                 snap.has_results ? job->results : NULL, job->n);
    free(payload);
    if (!answer) return PUB_RETRY;
    if (strcmp(answer, "ok") != 0) {
        atomic_fetch_add(&n_discarded, 1);
        fprintf(stderr, "edmd: job store: job %s: the outcome of run %ld (%s) was discarded: %s\n", job->id,
                job->attempt, mode, strcmp(answer, "lost") == 0 ? "another replica took the job over" : answer);
    } else {
        atomic_fetch_add(strcmp(mode, "release") == 0 ? &n_handed_back : &n_completed, 1);
    }
    held_remove(job);
    return PUB_DONE;
}

/* Renews the lease of every job held here; a job whose lease went elsewhere, or that ended
 * in the store (cancelled, and the announcement missed), stops here. */
static void renew_all(struct rconn *rc) {
    int n;
    struct srv_job **jobs = held_copy(&n);
    for (int i = 0; i < n; i++) {
        struct srv_job *job = jobs[i];
        srv_sched_lock(); /* an ended job keeps its lease until its outcome is written */
        int skip = job->store_flags & SRV_STORE_LOST;
        srv_sched_unlock();
        if (skip) continue;
        char rec[128], lease[128];
        key_of(rec, sizeof rec, job->id, "");
        key_of(lease, sizeof lease, job->id, ":lease");
        struct rargs a = {0};
        arg(&a, rec), arg(&a, lease), arg(&a, QUEUE), arg(&a, GROUP), arg(&a, R.consumer);
        arg_int(&a, job->attempt), arg_int(&a, (long long)(R.lease_s * 1000)), arg(&a, job->entry);
        redisReply *r = run_script(rc, S_RENEW, 3, &a);
        args_clear(&a);
        if (!r) break;
        if (r->type == REDIS_REPLY_STRING && strcmp(r->str, "ok") != 0) {
            char why[96];
            snprintf(why, sizeof why, "the job store says: %s", r->str);
            srv_sched_lock();
            drop_run(job, why);
            srv_sched_unlock();
        }
        freeReplyObject(r);
    }
    unref_all(jobs, n);
}

/* The queue's figures for /metrics; now and then, forgets consumers long gone. */
static void refresh_stats(struct rconn *rc, int forget) {
    struct rargs a = {0};
    arg(&a, QUEUE), arg(&a, GROUP), arg_int(&a, forget ? FORGET_CONSUMER_MS : 0), arg(&a, R.consumer);
    redisReply *r = run_script(rc, S_STATS, 1, &a);
    args_clear(&a);
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
        pthread_mutex_lock(&R.lock);
        R.st_unfinished = (long)r->element[0]->integer;
        R.st_running = (long)r->element[1]->integer;
        R.st_oldest_ms = (long)r->element[2]->integer;
        pthread_mutex_unlock(&R.lock);
    }
    freeReplyObject(r);
}

/* The publisher: progress and outcomes of the jobs run here, lease renewals, queue figures,
 * and the probe that finds Redis back after an outage. */
static void *publisher_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "edmd-store-pub");
    struct rconn rc = {0};
    const uint64_t renew_every = (uint64_t)(R.lease_s / 3 * 1e9), stats_every = 1000000000u;
    uint64_t next_renew = 0, next_stats = 0, next_forget = 0;
    pthread_mutex_lock(&R.lock);
    while (!R.stop) {
        uint64_t now = srv_now_ns();
        if (!R.out_head && now < next_renew && now < next_stats) {
            wait_ms(&R.wake, 100);
            continue;
        }
        /* take the list: the scheduler may add a job again meanwhile (it changed again) */
        int n = 0;
        for (struct srv_job *j = R.out_head; j; j = j->store_next) n++;
        struct srv_job **todo = malloc(sizeof *todo * (size_t)(n ? n : 1));
        if (!todo) n = 0;
        for (int i = 0; i < n; i++) {
            todo[i] = R.out_head;
            R.out_head = R.out_head->store_next;
            todo[i]->store_next = NULL;
        }
        if (!R.out_head) R.out_tail = NULL;
        R.publishing = n > 0;
        pthread_mutex_unlock(&R.lock);

        int retry = 0;
        int connected = rconn_ready(&rc) == 0;
        for (int i = 0; i < n; i++) {
            if (!connected || publish(&rc, todo[i]) == PUB_RETRY) {
                retry = 1;
                r_changed(todo[i]); /* back on the list (r_changed takes only the store lock) */
            }
            srv_job_unref(todo[i]);
        }
        free(todo);
        if (connected && now >= next_renew) {
            renew_all(&rc);
            next_renew = now + renew_every;
        }
        if (connected && now >= next_stats) {
            refresh_stats(&rc, now >= next_forget);
            if (now >= next_forget) next_forget = now + 60 * stats_every;
            next_stats = now + stats_every;
        }
        pthread_mutex_lock(&R.lock);
        R.publishing = 0;
        pthread_cond_broadcast(&R.flushed);
        if (retry || !connected) wait_ms(&R.wake, 200);
    }
    pthread_mutex_unlock(&R.lock);
    if (rc.c) redisFree(rc.c);
    return NULL;
}

/* ---- the puller: jobs from the shared queue ------------------------------------------------ */

/* Acquires the entry and, when this replica now runs the job, submits it to the scheduler. */
static void take(struct rconn *rc, const char *entry, const char *id, int reclaimed) {
    char rec[128], lease[128], events[128];
    key_of(rec, sizeof rec, id, "");
    key_of(lease, sizeof lease, id, ":lease");
    key_of(events, sizeof events, id, ":events");
    struct rargs a = {0};
    arg(&a, rec), arg(&a, lease), arg(&a, QUEUE), arg(&a, events);
    arg(&a, GROUP), arg(&a, entry), arg(&a, R.consumer), arg_int(&a, (long long)(R.lease_s * 1000));
    redisReply *r = run_script(rc, S_ACQUIRE, 4, &a);
    args_clear(&a);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6 || strcmp(r->element[0]->str, "run") != 0) {
        freeReplyObject(r); /* ended, held by a live replica, or not reachable: nothing to run */
        return;
    }
    long attempt = (long)r->element[1]->integer, remaining = (long)r->element[3]->integer;
    long long waited_ms = r->element[4]->integer;
    const redisReply *req = r->element[2];
    struct srv_error err;
    struct srv_job *job = NULL;
    if (req->type != REDIS_REPLY_STRING ||
        srv_job_from_body(R.models, R.limits, req->str, req->len, 1, remaining > 0 ? remaining : 1, &job, &err)) {
        /* a record this replica cannot run (a model it does not serve): the job fails */
        if (req->type != REDIS_REPLY_STRING) srv_error_set(&err, SRV_E_INTERNAL, NULL, "the job's record has no request");
        char *payload = error_record(&err);
        fprintf(stderr, "edmd: job store: job %s cannot run here: %s\n", id, err.message);
        if (payload) end_run(rc, id, entry, attempt, "failed", payload, NULL, 0);
        free(payload);
        freeReplyObject(r);
        return;
    }
    snprintf(job->id, sizeof job->id, "%s", id);
    snprintf(job->entry, sizeof job->entry, "%s", entry);
    job->durable = 1;
    job->attempt = attempt;
    job->created = (int64_t)atoll(r->element[5]->str ? r->element[5]->str : "0"); /* as the POST said */
    uint64_t waited_ns = waited_ms > 0 ? (uint64_t)waited_ms * 1000000u : 0;
    if (waited_ns < job->t_received) job->t_received -= waited_ns; /* total_ms counts from the POST */
    freeReplyObject(r);
    pthread_mutex_lock(&R.lock);
    int held = held_add(job) == 0;
    pthread_mutex_unlock(&R.lock);
    if (!held || srv_sched_submit(job, NULL, &err)) {
        /* draining, or no working device: give the job back at once */
        char *payload = error_record(&err);
        end_run(rc, id, entry, attempt, "release", payload ? payload : "{}", NULL, 0);
        free(payload);
        if (held) held_remove(job);
    } else {
        atomic_fetch_add(reclaimed ? &n_reclaimed : &n_pulled, 1);
        if (reclaimed)
            fprintf(stderr, "edmd: job store: job %s: took over run %ld (its last runner stopped renewing)\n", id,
                    attempt);
    }
    srv_job_unref(job);
}

/* The job id of a stream entry [entry id, [field, value, ...]] (its field "id"), or NULL. */
static const char *entry_job(const redisReply *e) {
    if (!e || e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return NULL;
    const redisReply *f = e->element[1];
    for (size_t i = 0; f && f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
        if (f->element[i]->str && strcmp(f->element[i]->str, "id") == 0 && f->element[i + 1]->str)
            return f->element[i + 1]->str;
    return NULL;
}

/* One entry idle for a lease (its runner died, or gave it back) or one never delivered;
 * returns 1 when it took one. */
static int pull_one(struct rconn *rc, char *cursor, size_t cursor_size, int claim) {
    char lease_ms[24], block[16];
    snprintf(lease_ms, sizeof lease_ms, "%lld", (long long)(R.lease_s * 1000));
    snprintf(block, sizeof block, "%d", BLOCK_MS);
    const char *autoclaim[] = {"XAUTOCLAIM", QUEUE, GROUP, R.consumer, lease_ms, cursor, "COUNT", "1"};
    const char *read[] = {"XREADGROUP", "GROUP", GROUP, R.consumer, "COUNT", "1", "BLOCK", block, "STREAMS", QUEUE, ">"};
    redisReply *r = claim ? rconn_cmd(rc, 8, autoclaim) : rconn_cmd(rc, 11, read);
    const redisReply *entries = NULL;
    if (r && r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "edmd: job store: %s: %s\n", claim ? "XAUTOCLAIM" : "XREADGROUP", r->str);
        if (strncmp(r->str, "NOGROUP", 7) == 0) rconn_drop(rc, "the consumer group is gone"); /* made again */
    } else if (r && claim && r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
        if (r->element[0]->type == REDIS_REPLY_STRING) snprintf(cursor, cursor_size, "%s", r->element[0]->str);
        entries = r->element[1];
    } else if (r && !claim && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->elements >= 2) {
        entries = r->element[0]->element[1];
    }
    const redisReply *e = entries && entries->type == REDIS_REPLY_ARRAY && entries->elements ? entries->element[0] : NULL;
    const char *id = entry_job(e);
    if (id) take(rc, e->element[0]->str, id, claim);
    freeReplyObject(r);
    return id != NULL;
}

static void *puller_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "edmd-store-pull");
    struct rconn rc = {.block_ms = BLOCK_MS};
    char cursor[48] = "0-0";
    uint64_t next_claim = 0;
    pthread_mutex_lock(&R.lock);
    while (!R.stop) {
        int pulling = R.pulling, pause_ms = 0;
        pthread_mutex_unlock(&R.lock);
        if (!pulling || !srv_sched_room()) {
            pause_ms = 20; /* the workers are full (or draining): pull nothing */
        } else if (rconn_ready(&rc)) {
            pause_ms = 100;
        } else {
            /* entries whose runner stopped renewing first (every quarter second), then new ones */
            uint64_t now = srv_now_ns();
            int took = 0;
            if (now >= next_claim) {
                took = pull_one(&rc, cursor, sizeof cursor, 1);
                if (!took) next_claim = now + 250000000u;
            }
            if (!took && rc.c) pull_one(&rc, cursor, sizeof cursor, 0);
        }
        pthread_mutex_lock(&R.lock);
        if (pause_ms && !R.stop) wait_ms(&R.wake, pause_ms);
    }
    pthread_mutex_unlock(&R.lock);
    if (rc.c) redisFree(rc.c);
    return NULL;
}

/* ---- the follower: event streams and cancellations ----------------------------------------- */

/* A followed job whose events said it ended: its outcome from the record. */
static void mirror_outcome(struct rconn *rc, struct srv_job *job) {
    char rec[128];
    key_of(rec, sizeof rec, job->id, "");
    const char *all[] = {"HGETALL", rec};
    redisReply *h = rconn_cmd(rc, 2, all);
    srv_sched_lock();
    if (!is_error(h) && h->elements > 0) view_update(job, h, 0);
    else job->state = SRV_JOB_FAILED; /* expired meanwhile */
    srv_sched_notify(job);
    srv_sched_unlock();
    freeReplyObject(h);
}

/* A cancellation announced by whichever replica answered the DELETE: the run here stops
 * (the record says cancelled already, so nothing of this run is written). */
static void on_cancelled(const redisReply *entries, char *last, size_t last_size) {
    for (size_t i = 0; entries && entries->type == REDIS_REPLY_ARRAY && i < entries->elements; i++) {
        const char *id = entry_job(entries->element[i]);
        if (!id) continue;
        snprintf(last, last_size, "%s", entries->element[i]->element[0]->str);
        struct srv_job *job = held_find(id);
        if (!job) continue;
        srv_sched_lock();
        job->store_flags |= SRV_STORE_LOST;
        if (!srv_job_state_terminal(job->state)) srv_sched_cancel(job, SRV_E_CANCELLED, "cancelled by DELETE");
        srv_sched_unlock();
        srv_job_unref(job);
    }
}

static void *follower_main(void *unused) {
    (void)unused;
    pthread_setname_np(pthread_self(), "edmd-store-sse");
    struct rconn rc = {.block_ms = BLOCK_MS};
    char cancels[48] = "", block[16];
    snprintf(block, sizeof block, "%d", BLOCK_MS);
    pthread_mutex_lock(&R.lock);
    while (!R.stop) {
        pthread_mutex_unlock(&R.lock);
        if (rconn_ready(&rc)) {
            pthread_mutex_lock(&R.lock);
            if (!R.stop) wait_ms(&R.wake, 100);
            continue;
        }
        if (!cancels[0]) { /* from the newest announcement on */
            const char *newest[] = {"XREVRANGE", CANCELS, "+", "-", "COUNT", "1"};
            redisReply *r = rconn_cmd(&rc, 6, newest);
            if (r && r->type == REDIS_REPLY_ARRAY)
                snprintf(cancels, sizeof cancels, "%s",
                         r->elements ? r->element[0]->element[0]->str : "0-0");
            freeReplyObject(r);
            pthread_mutex_lock(&R.lock);
            continue;
        }
        /* the streams to read: the announcements, and every followed job */
        pthread_mutex_lock(&R.lock);
        int n = 0;
        for (struct mirror *m = R.mirrors; m; m = m->next) n++;
        struct mirror *snap = calloc((size_t)n + 1, sizeof *snap);
        if (!snap) n = 0;
        int k = 0;
        for (struct mirror *m = R.mirrors; m && k < n; m = m->next, k++) {
            snap[k] = *m;
            srv_job_ref(m->job);
        }
        pthread_mutex_unlock(&R.lock);
        struct rargs a = {0};
        arg(&a, "XREAD"), arg(&a, "COUNT"), arg(&a, "200"), arg(&a, "BLOCK"), arg(&a, block), arg(&a, "STREAMS");
        arg(&a, CANCELS);
        for (int i = 0; i < n; i++) arg(&a, snap[i].key);
        arg(&a, cancels);
        for (int i = 0; i < n; i++) arg(&a, snap[i].last);
        redisReply *r = a.failed ? NULL : rconn_argv(&rc, a.n, a.v, a.len);
        args_clear(&a);
        for (size_t s = 0; r && r->type == REDIS_REPLY_ARRAY && s < r->elements; s++) {
            const redisReply *stream = r->element[s];
            if (stream->type != REDIS_REPLY_ARRAY || stream->elements < 2 || !stream->element[0]->str) continue;
            if (strcmp(stream->element[0]->str, CANCELS) == 0) {
                on_cancelled(stream->element[1], cancels, sizeof cancels);
                continue;
            }
            for (int i = 0; i < n; i++) {
                if (strcmp(snap[i].key, stream->element[0]->str) != 0) continue;
                srv_sched_lock();
                int ended = mirror_entries(snap[i].job, stream->element[1], snap[i].last, sizeof snap[i].last);
                if (!ended) srv_sched_notify(snap[i].job);
                srv_sched_unlock();
                if (ended) mirror_outcome(&rc, snap[i].job);
            }
        }
        freeReplyObject(r);
        pthread_mutex_lock(&R.lock);
        for (int i = 0; i < n; i++)
            for (struct mirror *m = R.mirrors; m; m = m->next)
                if (m->job == snap[i].job) snprintf(m->last, sizeof m->last, "%s", snap[i].last);
        pthread_mutex_unlock(&R.lock);
        for (int i = 0; i < n; i++) srv_job_unref(snap[i].job);
        free(snap);
        pthread_mutex_lock(&R.lock);
    }
    pthread_mutex_unlock(&R.lock);
    if (rc.c) redisFree(rc.c);
    return NULL;
}

/* ---- readiness, metrics, life ------------------------------------------------------------- */

static int r_ready(char *why, size_t size) {
    if (atomic_load(&R.up)) return 1;
    pthread_mutex_lock(&R.lock);
    snprintf(why, size, "redis %s:%d: %s", R.host, R.port, R.why[0] ? R.why : "connecting");
    pthread_mutex_unlock(&R.lock);
    return 0;
}

static int r_reached(void) { return atomic_load(&R.reached); }

static void series(struct srv_buf *out, const char *name, const char *type, const char *help, double v) {
    srv_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void r_metrics(struct srv_buf *out) {
    pthread_mutex_lock(&R.lock);
    long unfinished = R.st_unfinished, running = R.st_running, oldest = R.st_oldest_ms, held = R.n_held;
    pthread_mutex_unlock(&R.lock);
    series(out, "edm_job_store_up", "gauge", "1 while the shared job store (Redis) answers.", atomic_load(&R.up));
    series(out, "edm_job_store_queue_length", "gauge", "Jobs of the shared queue that no replica has taken yet.",
           (double)(unfinished > running ? unfinished - running : 0));
    series(out, "edm_job_store_jobs_running", "gauge", "Jobs of the shared queue that a replica holds.",
           (double)running);
    series(out, "edm_job_store_oldest_job_age_seconds", "gauge",
           "Age of the oldest unfinished job of the shared queue (0: none).", oldest > 0 ? oldest / 1e3 : 0.0);
    series(out, "edm_job_store_jobs_held", "gauge", "Jobs of the shared queue this replica runs (outcome not yet written).",
           (double)held);
    srv_buf_printf(out,
                   "# HELP edm_job_store_jobs_taken_total Jobs this replica took from the shared queue.\n"
                   "# TYPE edm_job_store_jobs_taken_total counter\n"
                   "edm_job_store_jobs_taken_total{how=\"new\"} %ld\n"
                   "edm_job_store_jobs_taken_total{how=\"reclaimed\"} %ld\n",
                   atomic_load(&n_pulled), atomic_load(&n_reclaimed));
    series(out, "edm_job_store_outcomes_written_total", "counter", "Job outcomes this replica wrote (exactly once per job).",
           (double)atomic_load(&n_completed));
    series(out, "edm_job_store_outcomes_discarded_total", "counter",
           "Outcomes of runs that had lost their job to another replica, not written.", (double)atomic_load(&n_discarded));
    series(out, "edm_job_store_runs_dropped_total", "counter",
           "Runs stopped here because another replica took the job over or it ended elsewhere.",
           (double)atomic_load(&n_lost));
    series(out, "edm_job_store_jobs_handed_back_total", "counter", "Jobs given back to the queue by a drain.",
           (double)atomic_load(&n_handed_back));
}

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], HOST a name, an IPv4 or [an IPv6] address. */
static int parse_url(const char *url, char *err, size_t err_size) {
    const char *p = url + strlen("redis://"), *at = strchr(p, '@');
    R.port = 6379;
    R.db = 0;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        size_t ulen = colon ? (size_t)(colon - p) : 0;
        if (!colon || ulen >= sizeof R.user || (size_t)(at - colon - 1) >= sizeof R.password) {
            snprintf(err, err_size, "job-store: expected redis://[:PASSWORD@]HOST[:PORT][/DB]");
            return -1;
        }
        memcpy(R.user, p, ulen);
        R.user[ulen] = '\0';
        memcpy(R.password, colon + 1, (size_t)(at - colon - 1));
        R.password[at - colon - 1] = '\0';
        p = at + 1;
    }
    const char *host_end;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end) goto bad;
        p++;
    } else {
        host_end = p + strcspn(p, ":/");
    }
    if (host_end == p || (size_t)(host_end - p) >= sizeof R.host) goto bad;
    memcpy(R.host, p, (size_t)(host_end - p));
    R.host[host_end - p] = '\0';
    p = host_end + (*host_end == ']');
    char *end;
    if (*p == ':') {
        long port = strtol(p + 1, &end, 10);
        if (end == p + 1 || port < 1 || port > 65535) goto bad;
        R.port = (int)port;
        p = end;
    }
    if (*p == '/' && p[1]) {
        long db = strtol(p + 1, &end, 10);
        if (end == p + 1 || *end || db < 0 || db > 1000000) goto bad;
        R.db = (int)db;
        p = end;
    } else if (*p == '/') {
        p++;
    }
    if (*p) goto bad;
    return 0;
bad:
    snprintf(err, err_size, "job-store: cannot read '%.200s' as redis://[:PASSWORD@]HOST[:PORT][/DB]", url);
    return -1;
}

static int read_password_file(const char *path, char *err, size_t err_size) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_size, "job-store-password-file %s: %s", path, strerror(errno));
        return -1;
    }
    char line[sizeof R.password];
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[ok ? strcspn(line, "\r\n") : 0] = '\0';
    if (!line[0]) {
        snprintf(err, err_size, "job-store-password-file %s: empty", path);
        return -1;
    }
    if (R.password[0]) {
        snprintf(err, err_size, "job-store: a password both in the URL and in job-store-password-file");
        return -1;
    }
    snprintf(R.password, sizeof R.password, "%s", line);
    return 0;
}

static int r_open(const struct srv_jobstore_options *o, char *err, size_t err_size) {
    if (parse_url(o->spec, err, err_size)) return -1;
    if (o->password_file && *o->password_file && read_password_file(o->password_file, err, err_size)) return -1;
    R.lease_s = o->lease_s;
    R.ttl_s = o->job_ttl_s > 1 ? o->job_ttl_s : 1;
    R.max_jobs = o->max_jobs;
    R.models = o->models;
    R.limits = o->limits;
    R.pool_n = (int)(sizeof R.pool / sizeof R.pool[0]);
    pthread_condattr_t ca; /* wait_ms's deadlines are on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&R.wake, &ca);
    pthread_cond_init(&R.flushed, &ca);
    pthread_cond_init(&R.pool_free, &ca);
    pthread_condattr_destroy(&ca);
    char host[64] = "edmd";
    gethostname(host, sizeof host - 1);
    char tag[16];
    srv_random_id("", tag, sizeof tag);
    snprintf(R.consumer, sizeof R.consumer, "%.60s-%d-%.6s", host, (int)getpid(), tag);
    snprintf(R.why, sizeof R.why, "not connected yet");
    R.opened = 1;
    return 0;
}

static int r_start(char *err, size_t err_size) {
    void *(*mains[3])(void *) = {publisher_main, puller_main, follower_main};
    pthread_t *threads[3] = {&R.publisher, &R.puller, &R.follower};
    R.pulling = 1;
    for (int i = 0; i < 3; i++) {
        if (pthread_create(threads[i], NULL, mains[i], NULL)) {
            snprintf(err, err_size, "job store: cannot start a thread");
            return -1;
        }
        R.threads = i + 1;
    }
    return 0;
}

static void r_stop_pulling(void) {
    pthread_mutex_lock(&R.lock);
    R.pulling = 0;
    pthread_mutex_unlock(&R.lock);
}

static long r_hand_back(void) {
    int n;
    long back = 0;
    struct srv_job **jobs = held_copy(&n);
    srv_sched_lock();
    for (int i = 0; i < n; i++)
        if (!srv_job_state_terminal(jobs[i]->state) && !(jobs[i]->store_flags & SRV_STORE_LOST)) {
            jobs[i]->store_flags |= SRV_STORE_HAND_BACK;
            back++;
        }
    srv_sched_unlock();
    unref_all(jobs, n);
    return back;
}

static long r_flush(double timeout_s) {
    uint64_t until = srv_now_ns() + (uint64_t)(timeout_s * 1e9);
    pthread_mutex_lock(&R.lock);
    while ((R.n_held > 0 || R.out_head || R.publishing) && R.threads && srv_now_ns() < until)
        wait_ms(&R.flushed, 50);
    long left = R.n_held;
    pthread_mutex_unlock(&R.lock);
    return left;
}

static void r_close(void) {
    if (!R.opened) return;
    pthread_mutex_lock(&R.lock);
    R.stop = 1;
    R.pulling = 0;
    pthread_cond_broadcast(&R.wake);
    pthread_mutex_unlock(&R.lock);
    pthread_t *threads[3] = {&R.publisher, &R.puller, &R.follower};
    for (int i = 0; i < R.threads; i++) pthread_join(*threads[i], NULL);
    R.threads = 0;
    for (int i = 0; i < R.pool_n; i++)
        if (R.pool[i].c) redisFree(R.pool[i].c);
    while (R.out_head) {
        struct srv_job *j = R.out_head;
        R.out_head = j->store_next;
        j->store_next = NULL;
        srv_job_unref(j);
    }
    R.out_tail = NULL;
    unref_all(R.held, R.n_held);
    R.held = NULL;
    R.n_held = R.cap_held = 0;
    while (R.mirrors) {
        struct mirror *m = R.mirrors;
        R.mirrors = m->next;
        srv_job_unref(m->job);
        free(m);
    }
    R.opened = 0;
}

const struct srv_jobstore_ops srv_jobstore_redis = {
    "redis", r_open, r_start, r_create, r_get, r_cancel, r_follow, r_unfollow, r_changed,
    r_ready, r_reached, r_metrics, r_stop_pulling, r_hand_back, r_flush, r_close,
};
