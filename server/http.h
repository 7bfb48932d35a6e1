/*
 * http.h - the HTTP front: the libmicrohttpd daemon and the life of a request in it.
 *
 * Request life (DESIGN.md, libmicrohttpd lessons): the first call sees the headers and
 * answers early errors (400/501 framing, 404, 405, 401, 413, 415, 503) without reading a
 * body (whose rest is then read and dropped by the lingering close, linger.h); later calls
 * collect the body; the last call dispatches to an api_*.c handler (routes.h), which answers
 * through respond.h. A synchronous generation parks its connection until its job ends
 * (park.h); the scheduler's wake call resumes it exactly once and the handler then queues
 * the response.
 *
 * Ownership: struct srv_request (request.h) is made on the first call and freed when MHD
 * reports the request complete, which also writes the access log line.
 *
 * Listeners: the API listener, and with admin-port the admin listener (probes and metrics
 * only, its own connection budget). Connections of both get header and body deadlines
 * (conn.h), enforced by srv_conn_enforce from the housekeeping tick.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <stddef.h>

#include "request.h"

/* Starts listening (port 0: any; srv->port gets the bound port). */
int srv_http_start(struct srv_server *srv, char *err, size_t err_size);
/* Stops accepting connections (SIGTERM, after the drain). */
void srv_http_quiesce(struct srv_server *srv);
/* Resumes every parked connection and stops the daemon. */
void srv_http_stop(struct srv_server *srv);

#endif /* SRV_HTTP_H */
