/*
 * http.h - the HTTP front: libmicrohttpd daemon, per-request context, routing, the checks
 * every request passes (CORS, API key, body size and type, readiness), and responses.
 *
 * Request life (DESIGN.md, libmicrohttpd lessons): the first call sees the headers and
 * answers early errors (404, 405, 401, 413, 415, 503) without reading a body; later calls
 * collect the body; the last call dispatches to an api_*.c handler. A synchronous
 * generation suspends the connection until its job ends; the scheduler's wake call resumes
 * it exactly once and the handler then queues the response.
 *
 * Ownership: struct srv_request is made on the first call and freed when MHD reports the
 * request complete (srv_http's completion callback), which also writes the access log line.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "errors.h"
#include "job.h"
#include "json_req.h"
#include "models.h"
#include "util.h"

/* A connection parked with MHD_suspend_connection while it waits for a job (a synchronous
 * generation, an SSE stream). All of it is [sched lock]: suspension and resumption happen
 * under the scheduler lock, so a resume can never come before its suspend. */
struct srv_susp {
    struct MHD_Connection *conn;
    int sock;                      /* for the disconnect check (recv MSG_PEEK) */
    int suspended;
    int peer_gone;                 /* the check found the client gone */
    int keepalive_due;             /* SSE: parked long enough to owe a keep-alive comment */
    uint64_t parked_at;
    int cancel_job_on_disconnect;  /* sync: the work stops; SSE: only the stream ends */
    struct srv_job *job;           /* borrowed: the owner holds a reference */
    struct srv_susp *prev, *next;  /* srv_server.suspended */
};

struct srv_server {
    const struct srv_config *cfg;     /* borrowed */
    const struct srv_models *models;  /* set before ready turns 1 */
    atomic_int ready;                 /* models loaded and workers started */
    atomic_int draining;
    struct srv_req_limits limits;
    struct MHD_Daemon *daemon;
    atomic_long in_flight;            /* requests between first call and completion */
    uint16_t port;
    struct srv_susp *suspended;       /* [sched lock] parked connections */
};

enum srv_route {
    SRV_ROUTE_NONE,
    SRV_ROUTE_HEALTHZ,
    SRV_ROUTE_READYZ,
    SRV_ROUTE_METRICS,
    SRV_ROUTE_OPENAPI,
    SRV_ROUTE_WEB,       /* the page (server/web/); routes from here on need the engine loaded */
    SRV_ROUTE_MODELS,
    SRV_ROUTE_GENERATE,
    SRV_ROUTE_JOBS,
    SRV_ROUTE_JOB,
    SRV_ROUTE_JOB_EVENTS,
    SRV_ROUTE_JOB_IMAGE,
};

enum srv_phase { SRV_PHASE_BODY, SRV_PHASE_WAIT, SRV_PHASE_DONE };

struct srv_request {
    struct srv_server *srv;
    struct MHD_Connection *conn;
    uint64_t t_start;
    char method[16], path[256];
    char remote[64], request_id[40];
    enum srv_route route;
    char job_id[64];
    int image_index;         /* images/{index}; for SRV_ROUTE_WEB the asset */
    enum srv_phase phase;
    struct srv_buf body;
    int too_large;
    size_t discarded;
    int status;
    size_t resp_bytes;
    const char *cors_origin; /* the Origin to echo, or NULL */
    char error_code[40];     /* for the access log */
    /* synchronous generation */
    struct srv_job *job;     /* a reference, or NULL */
    struct srv_watch watch;  /* registered with the job while waiting */
    int watching, want_png;
    struct srv_susp susp;
};

/* Starts listening (port 0: any; srv->port gets the bound port). */
int srv_http_start(struct srv_server *srv, char *err, size_t err_size);
/* Stops accepting connections (SIGTERM, after the drain). */
void srv_http_quiesce(struct srv_server *srv);
void srv_http_stop(struct srv_server *srv);
/* Finds parked connections whose client went away: cancels a sync request's job, ends an
 * SSE stream. Called periodically (a parked connection does not see a disconnect). */
void srv_http_check_disconnects(struct srv_server *srv);
/* Resumes every parked connection (before MHD_stop_daemon, which must not see any). */
void srv_http_resume_all(struct srv_server *srv);

/* [sched lock] Parks / unparks a connection. srv_http_park may only be called from MHD's
 * access handler or content reader of that connection. */
void srv_http_park(struct srv_server *srv, struct srv_susp *s);
void srv_http_unpark(struct srv_server *srv, struct srv_susp *s);

/* Responses. body is malloc'd and taken (NULL with len 0: empty). headers: NULL or
 * {"Name", "value", ..., NULL}. All return what MHD's access handler must return. */
enum MHD_Result srv_http_respond(struct srv_request *r, int status, const char *content_type,
                                 char *body, size_t len, const char *const *headers);
enum MHD_Result srv_http_respond_json(struct srv_request *r, int status, json_t *body,
                                      const char *const *headers);
enum MHD_Result srv_http_respond_error(struct srv_request *r, const struct srv_error *e);
/* Queues an MHD response made elsewhere (SSE), adding the common headers; takes it. */
enum MHD_Result srv_http_queue(struct srv_request *r, int status, struct MHD_Response *resp);
/* A header of the request, or NULL. */
const char *srv_http_header(struct srv_request *r, const char *name);

/* Waits for r->job to end: registers a watcher and parks the connection, unless the job
 * has already ended. Returns 1 when parked (return MHD_YES; the handler runs again when the
 * job ends), 0 when the job already ended (respond now). */
int srv_http_wait_for_job(struct srv_request *r);

/* Handlers (api_*.c), called once the body is complete. */
enum MHD_Result srv_api_healthz(struct srv_request *r);
enum MHD_Result srv_api_readyz(struct srv_request *r);
enum MHD_Result srv_api_metrics(struct srv_request *r);
enum MHD_Result srv_api_openapi(struct srv_request *r);
enum MHD_Result srv_api_models(struct srv_request *r);
enum MHD_Result srv_api_generate(struct srv_request *r);
enum MHD_Result srv_api_generate_resumed(struct srv_request *r);
enum MHD_Result srv_api_jobs_create(struct srv_request *r);
enum MHD_Result srv_api_job_get(struct srv_request *r);
enum MHD_Result srv_api_job_delete(struct srv_request *r);
enum MHD_Result srv_api_job_events(struct srv_request *r);
enum MHD_Result srv_api_job_image(struct srv_request *r);
enum MHD_Result srv_api_web(struct srv_request *r);
/* The embedded web file served at path ("/" is /index.html), or -1 (api_web.c). */
int srv_web_find(const char *path);

/* Parses a generation body into a job ready to submit (api_generate.c); shared by the sync
 * and async endpoints. */
enum srv_err srv_api_make_job(struct srv_request *r, int async, struct srv_job **out,
                              struct srv_error *err);

#endif /* SRV_HTTP_H */
