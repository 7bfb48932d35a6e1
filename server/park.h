/*
 * park.h - connections parked while they wait for a job: a synchronous generation until its
 * job ends, an SSE stream until the job changes (DESIGN.md, libmicrohttpd lessons).
 *
 * A parked connection costs no thread, but it neither times out nor notices a disconnect;
 * so every job has a deadline, srv_park_check_disconnects peeks at parked sockets, and
 * srv_park_resume_all runs before MHD_stop_daemon (which must see none parked).
 */
#ifndef SRV_PARK_H
#define SRV_PARK_H

#include "request.h"

/* [sched lock] Parks / unparks a connection. srv_park_suspend may only be called from MHD's
 * access handler or content reader of that connection; srv_park_resume of a connection not
 * parked does nothing. */
void srv_park_suspend(struct srv_server *srv, struct srv_susp *s);
void srv_park_resume(struct srv_server *srv, struct srv_susp *s);

/* Waits for r->job to end: registers a watcher and parks the connection, unless the job
 * has already ended. Returns 1 when parked (return MHD_YES; `resume` answers the request
 * when the job has ended), 0 when the job already ended (respond now). */
int srv_park_wait_for_job(struct srv_request *r, srv_handler resume);

/* Finds parked connections whose client went away: cancels a sync request's job, ends an
 * SSE stream; wakes idle streams owed a keep-alive. Called periodically. */
void srv_park_check_disconnects(struct srv_server *srv);
/* Resumes every parked connection. */
void srv_park_resume_all(struct srv_server *srv);

#endif /* SRV_PARK_H */
