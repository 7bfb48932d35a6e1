/*
 * request.h - what the HTTP front and the handlers share: the server's state and one
 * request's context, with the parking state of its connection.
 *
 * Ownership: http.c makes a struct srv_request on MHD's first call for a request and frees
 * it when MHD reports the request complete (after writing its access-log line); handlers
 * borrow it. A request holds one reference on r->job until then.
 */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <microhttpd.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "job.h"
#include "json_req.h"
#include "models.h"
#include "util.h"

/* A connection parked with MHD_suspend_connection while it waits for a job (a synchronous
 * generation, an SSE stream; park.c). All of it is [sched lock]: suspension and resumption
 * happen under the scheduler lock, so a resume can never come before its suspend. */
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
    struct MHD_Daemon *admin_daemon;  /* the admin listener (probes, metrics), or NULL */
    atomic_long in_flight;            /* requests between first call and completion */
    uint16_t port, admin_port;
    struct srv_susp *suspended;       /* [sched lock] parked connections */
};

struct srv_route;
struct srv_request;
/* Answers a request, or parks it; returns what MHD's access handler must return. */
typedef enum MHD_Result (*srv_handler)(struct srv_request *r);

enum srv_phase { SRV_PHASE_BODY, SRV_PHASE_WAIT, SRV_PHASE_DONE };

struct srv_conn;

struct srv_request {
    struct srv_server *srv;
    struct MHD_Connection *conn;
    struct srv_conn *sconn;  /* its connection's record and deadlines (conn.h); borrowed, or NULL */
    int admin;               /* came in on the admin listener */
    int http10;              /* an HTTP/1.0 request */
    uint64_t t_start;
    char method[16], path[256];
    char remote[64], request_id[40];
    const struct srv_route *route; /* the matched row of routes.c, once its checks passed */
    char allow[48];          /* the methods of the path (Allow on 405 and OPTIONS) */
    /* the captures of the path's pattern (routes.h) */
    char job_id[64];         /* {id} */
    int image_index;         /* {i} */
    int asset;               /* {asset}: the index in srv_assets */
    char model_id[136];      /* {model} */
    enum srv_phase phase;
    srv_handler resume;      /* SRV_PHASE_WAIT: runs when the parked connection resumes */
    struct srv_buf body;
    int body_announced;      /* Content-Length > 0 or Transfer-Encoding: a body follows */
    int must_close;          /* the answer closes the connection (broken framing) */
    int answered_early;      /* answered from the headers alone, before any body was read */
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

/* A header of the request, or NULL. */
static inline const char *srv_request_header(struct srv_request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

#endif /* SRV_REQUEST_H */
