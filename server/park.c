/*
 * park.c - parked connections (park.h).
 *
 * The parked list (srv_server.suspended) and every suspend and resume are under the
 * scheduler lock: the worker's wake call resumes a connection under that lock, so it can
 * never come before the suspend, and each connection is resumed exactly once. The
 * disconnect check is a recv(MSG_PEEK | MSG_DONTWAIT) per parked socket, a few times a
 * second; a client that went away reads as 0 bytes or an error other than EAGAIN.
 */
#include "park.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

#include "scheduler.h"

void srv_park_suspend(struct srv_server *srv, struct srv_susp *s) {
    s->suspended = 1;
    s->parked_at = srv_now_ns();
    s->prev = NULL;
    s->next = srv->suspended;
    if (srv->suspended) srv->suspended->prev = s;
    srv->suspended = s;
    MHD_suspend_connection(s->conn);
}

void srv_park_resume(struct srv_server *srv, struct srv_susp *s) {
    if (!s->suspended) return;
    s->suspended = 0;
    if (s->prev) s->prev->next = s->next;
    else srv->suspended = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
    MHD_resume_connection(s->conn);
}

/* The watcher of a synchronous request: wake it when its job has ended. */
static void sync_wake(struct srv_watch *w) {
    struct srv_request *r = (struct srv_request *)((char *)w - offsetof(struct srv_request, watch));
    if (srv_job_state_terminal(r->job->state)) srv_park_resume(r->srv, &r->susp);
}

int srv_park_wait_for_job(struct srv_request *r, srv_handler resume) {
    int parked = 0;
    srv_sched_lock();
    if (!r->watching) {
        r->watch.wake = sync_wake;
        srv_sched_watch(r->job, &r->watch);
        r->watching = 1;
    }
    if (!srv_job_state_terminal(r->job->state)) {
        r->susp.conn = r->conn;
        r->susp.job = r->job;
        r->susp.cancel_job_on_disconnect = 1;
        r->phase = SRV_PHASE_WAIT;
        r->resume = resume;
        srv_park_suspend(r->srv, &r->susp);
        parked = 1;
    }
    srv_sched_unlock();
    return parked;
}

void srv_park_check_disconnects(struct srv_server *srv) {
    uint64_t now = srv_now_ns(), keepalive = (uint64_t)(srv->cfg->sse_keepalive_s * 1e9);
    srv_sched_lock();
    for (struct srv_susp *s = srv->suspended, *next; s; s = next) {
        next = s->next;
        char c;
        ssize_t n = recv(s->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        int gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        if (!gone) {
            if (!s->cancel_job_on_disconnect && now - s->parked_at >= keepalive) {
                s->keepalive_due = 1; /* an idle event stream: let it send a comment */
                srv_park_resume(srv, s);
            }
            continue;
        }
        s->peer_gone = 1;
        if (s->cancel_job_on_disconnect && s->job) {
            /* the wake that follows unparks this connection (and only this one: a sync job
             * has exactly one waiter), so `next` stays valid */
            srv_sched_cancel(s->job, SRV_E_CANCELLED, "the client disconnected");
        }
        srv_park_resume(srv, s);
    }
    srv_sched_unlock();
}

void srv_park_resume_all(struct srv_server *srv) {
    srv_sched_lock();
    while (srv->suspended) srv_park_resume(srv, srv->suspended);
    srv_sched_unlock();
}
