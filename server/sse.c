/*
 * sse.c - GET /v1/jobs/{id}/events: a job's life as Server-Sent Events.
 *
 * Events: "queued", "running", one "progress" per completed step ({step, steps, nfe,
 * nfe_total}), then exactly one of "completed" (the job status with image URLs),
 * "failed" or "cancelled" (with the error), after which the stream ends. A client that
 * connects late gets the history first, so every stream tells the whole story. With the
 * Redis store a job whose replica died runs again elsewhere from step 1: a "rerun" event
 * ({attempt, step: the last step told, message}) says so at once, and progress resumes once
 * the new run passes that step (steps are never told twice).
 *
 * For standard EventSource clients (the WHATWG rules): every event has an id, the job's own
 * sequence number of it (sse_seq: queued 1, running 2, progress k 2+k, the final event
 * steps+3; a job's story is fixed, so its numbers are too, and any copy of its events - a
 * replica reading a shared job store - numbers them the same); each stream starts with
 * "retry:". A client reconnecting with Last-Event-ID gets only the events after that one,
 * and one that has already seen the final event gets 204, which tells EventSource to stop
 * reconnecting (without it, each reconnect after the end replayed the whole story).
 * The job comes from the job store (jobstore.h): the running job itself with the memory
 * store; with Redis a view that the store keeps up to date from the job's event stream,
 * whichever replica runs it. "rerun" has no id: it is not part of the fixed story (a
 * reconnect keeps its place, and hears of the rerun again).
 *
 * The stream is an MHD content reader. When it has nothing to send it parks its connection
 * (srv_park_suspend, under the scheduler lock); every change of the job wakes it, and so does
 * the disconnect check every --sse-keepalive seconds, for a ": keepalive" comment line.
 * Works with `curl -N`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobstore.h"
#include "park.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

/* How long EventSource waits before reconnecting (its own default is a few seconds). */
#define SSE_RETRY_MS 1000

struct srv_sse {
    struct srv_server *srv;
    struct srv_job *job; /* a reference */
    struct srv_watch watch;
    struct srv_susp susp;
    int sent_queued, sent_running, last_step, sent_end; /* [lock] */
    long told_attempt;                                   /* [lock] runs told of (1: the first) */
    long resume_after; /* Last-Event-ID: send only the events after it */
    struct srv_buf out;                                  /* [lock] */
    size_t off;
};

static void sse_wake(struct srv_watch *w) {
    struct srv_sse *s = (struct srv_sse *)((char *)w - offsetof(struct srv_sse, watch));
    srv_park_resume(s->srv, &s->susp);
}

/* The sequence number of a job's event: "queued" 1, "running" 2, "progress" of step k 2+k,
 * the final event steps+3 (-1 for step: the final one). */
enum { SSE_QUEUED = 1, SSE_RUNNING = 2 };
static long sse_seq(const struct srv_job *job, int step) {
    return step >= 0 ? SSE_RUNNING + step : (long)job->steps + 3;
}

/* seq 0: an event without an id (the client's Last-Event-ID stays where it was). */
static void sse_event(struct srv_sse *s, long seq, const char *name, json_t *data) {
    if (seq && seq <= s->resume_after) { /* the client has it */
        json_decref(data);
        return;
    }
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (seq) srv_buf_printf(&s->out, "id: %ld\n", seq);
    srv_buf_printf(&s->out, "event: %s\ndata: %s\n\n", name, text ? text : "{}");
    free(text);
}

/* [lock] Appends every event not yet sent. */
static void sse_fill(struct srv_sse *s) {
    const struct srv_job *job = s->job;
    if (!s->sent_queued) {
        sse_event(s, SSE_QUEUED, "queued",
                  json_pack("{s:s, s:s}", "id", job->id, "status", "queued"));
        s->sent_queued = 1;
    }
    if (!s->sent_running && job->t_started) {
        sse_event(s, SSE_RUNNING, "running",
                  json_pack("{s:s, s:s, s:i, s:i}", "id", job->id, "status", "running", "steps",
                            job->steps, "nfe_total", job->nfe_per_image * job->n));
        s->sent_running = 1;
    }
    if (s->sent_running && job->view_attempt > s->told_attempt) {
        char why[200];
        snprintf(why, sizeof why,
                 "the replica running the job stopped; another runs it again from step 1 with the "
                 "same seeds (run %ld); progress resumes after step %d",
                 job->view_attempt, s->last_step);
        sse_event(s, 0, "rerun",
                  json_pack("{s:s, s:s, s:I, s:i, s:s}", "id", job->id, "status", "running",
                            "attempt", (json_int_t)job->view_attempt, "step", s->last_step,
                            "message", why));
        s->told_attempt = job->view_attempt;
    }
    while (s->last_step < job->step_done) {
        int k = ++s->last_step;
        sse_event(s, sse_seq(job, k), "progress",
                  json_pack("{s:s, s:i, s:i, s:I, s:i}", "id", job->id, "step", k, "steps",
                            job->steps, "nfe", (json_int_t)job->nfe_at_step[k], "nfe_total",
                            job->nfe_per_image * job->n));
    }
    if (srv_job_state_terminal(job->state) && !s->sent_end) {
        struct srv_job_snapshot snap;
        srv_job_snapshot(job, &snap);
        sse_event(s, sse_seq(job, -1), srv_job_state_name(job->state),
                  srv_job_status_json(job, &snap, 0));
        s->sent_end = 1;
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    struct srv_sse *s = cls;
    ssize_t ret;
    srv_sched_lock();
    if (s->susp.peer_gone) {
        ret = MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        if (s->off == s->out.len) {
            s->out.len = 0;
            s->off = 0;
            sse_fill(s);
        }
        if (s->out.failed) {
            ret = MHD_CONTENT_READER_END_WITH_ERROR;
        } else if (s->off < s->out.len) {
            size_t n = s->out.len - s->off < max ? s->out.len - s->off : max;
            memcpy(buf, s->out.data + s->off, n);
            s->off += n;
            ret = (ssize_t)n;
        } else if (s->sent_end) {
            ret = MHD_CONTENT_READER_END_OF_STREAM;
        } else if (s->susp.keepalive_due) {
            /* a comment line: ignored by clients, but it keeps proxies from closing an idle
             * stream (and finds a vanished client through the failed write) */
            static const char ping[] = ": keepalive\n\n";
            s->susp.keepalive_due = 0;
            size_t n = sizeof ping - 1 < max ? sizeof ping - 1 : max;
            memcpy(buf, ping, n);
            ret = (ssize_t)n;
        } else {
            srv_park_suspend(s->srv, &s->susp);
            ret = 0;
        }
    }
    srv_sched_unlock();
    return ret;
}

static void sse_free(void *cls) {
    struct srv_sse *s = cls;
    srv_sched_lock();
    srv_sched_unwatch(s->job, &s->watch);
    srv_park_resume(s->srv, &s->susp);
    srv_sched_unlock();
    srv_jobstore()->unfollow(s->job);
    srv_buf_clear(&s->out);
    free(s);
}

enum MHD_Result srv_api_job_events(struct srv_request *r) {
    struct srv_error e;
    struct srv_job *job = NULL;
    if (srv_jobstore()->follow(r->job_id, &job, &e)) return srv_respond_error(r, &e);
    /* Last-Event-ID: a reconnect; after the final event there is nothing more (204) */
    const char *last = srv_request_header(r, "Last-Event-ID");
    char *end = NULL;
    long resume_after = last ? strtol(last, &end, 10) : 0;
    if (!last || end == last || *end || resume_after < 0) resume_after = 0;
    srv_sched_lock();
    int over = srv_job_state_terminal(job->state) && resume_after >= sse_seq(job, -1);
    srv_sched_unlock();
    if (over) {
        r->job = srv_job_ref(job); /* for the access log */
        srv_jobstore()->unfollow(job);
        return srv_respond(r, 204, NULL, NULL, 0, NULL);
    }
    struct srv_sse *s = calloc(1, sizeof *s);
    if (!s) {
        srv_jobstore()->unfollow(job);
        return MHD_NO;
    }
    s->resume_after = resume_after;
    s->told_attempt = 1;
    s->srv = r->srv;
    s->job = job;
    s->watch.wake = sse_wake;
    s->susp.conn = r->conn;
    s->susp.sock = r->susp.sock;
    s->susp.job = job;
    srv_buf_init(&s->out);
    srv_buf_printf(&s->out, "retry: %d\n\n", SSE_RETRY_MS);
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, sse_read, s, sse_free);
    if (!resp) {
        srv_jobstore()->unfollow(job);
        free(s);
        return MHD_NO;
    }
    srv_sched_lock();
    srv_sched_watch(job, &s->watch);
    srv_sched_unlock();
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    r->job = srv_job_ref(job); /* for the access log */
    return srv_respond_queue(r, 200, resp);
}
