/*
 * http.c - the libmicrohttpd daemon and the life of a request in it (http.h).
 *
 * Threading: an internal epoll polling thread pool (--threads) with suspend/resume
 * (MHD_ALLOW_SUSPEND_RESUME), so a thread never blocks on a job: a waiting request is
 * parked (park.c) and costs nothing until the scheduler wakes it.
 *
 * MHD calls the access handler several times per request. The first call makes the
 * request's context (request id, CORS origin) and hands it to the router (router.c), which
 * answers early errors from the headers alone. Later calls collect the body: MHD has no
 * body cap, so a chunked body is counted as it arrives; past max-body it is discarded (the
 * router answers 413), and a client that keeps sending far past it is disconnected. The
 * last call runs the route's handler, or a parked request's resume handler. The completion
 * callback writes the access log line and frees the context.
 */
#include "http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "park.h"
#include "router.h"
#include "scheduler.h"

/* ---- a new request --------------------------------------------------------------------- */

/* The Origin to echo in CORS headers, or NULL: only configured origins ("*": any). */
static const char *cors_allowed(struct srv_request *r) {
    const struct srv_strlist *origins = &r->srv->cfg->cors_origins;
    const char *origin = srv_request_header(r, "Origin");
    if (!origin || origins->n == 0) return NULL;
    for (int i = 0; i < origins->n; i++)
        if (strcmp(origins->items[i], "*") == 0 || strcmp(origins->items[i], origin) == 0) return origin;
    return NULL;
}

/* A client's X-Request-Id is kept when it is short and plain (it ends up in logs), else a
 * new id is made. */
static void set_request_id(struct srv_request *r) {
    const char *rid = srv_request_header(r, "X-Request-Id");
    size_t rid_len = rid ? strlen(rid) : 0;
    if (rid && rid_len > 0 && rid_len < sizeof r->request_id && strspn(rid, "abcdefghijklmnopqrstuvwxyz"
                                                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                            "0123456789-_.:") == rid_len)
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        srv_random_id("req_", r->request_id, sizeof r->request_id);
}

static struct srv_request *request_new(struct srv_server *srv, struct MHD_Connection *conn, const char *url,
                                       const char *method) {
    struct srv_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = srv;
    r->conn = conn;
    r->t_start = srv_now_ns();
    r->susp.sock = -1;
    srv_buf_init(&r->body);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci) r->susp.sock = ci->connect_fd;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->remote, sizeof r->remote);
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->remote, sizeof r->remote);
    }
    r->cors_origin = cors_allowed(r);
    set_request_id(r);
    return r;
}

/* ---- the access handler ----------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    struct srv_server *srv = cls;
    struct srv_request *r = *con_cls;
    if (!r) {
        r = request_new(srv, conn, url, method);
        if (!r) return MHD_NO;
        atomic_fetch_add(&srv->in_flight, 1);
        *con_cls = r;
        return srv_router_begin(r);
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->phase != SRV_PHASE_BODY) return MHD_YES; /* answered early; drop the rest */
        if (!r->too_large && r->body.len + n <= (size_t)srv->cfg->max_body) {
            srv_buf_append(&r->body, upload_data, n);
            if (r->body.failed) return MHD_NO;
        } else {
            r->too_large = 1;
            r->discarded += n;
            /* a client that keeps sending long after the limit is cut off */
            if (r->discarded > 16 * (size_t)srv->cfg->max_body) return MHD_NO;
        }
        return MHD_YES;
    }
    switch (r->phase) {
    case SRV_PHASE_BODY: return srv_router_dispatch(r);
    case SRV_PHASE_WAIT: return r->resume(r);
    case SRV_PHASE_DONE: break;
    }
    return MHD_YES;
}

static const char *termination_name(enum MHD_RequestTerminationCode toe) {
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK: return NULL;
    case MHD_REQUEST_TERMINATED_WITH_ERROR: return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED: return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN: return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR: return "read_error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT: return "client_abort";
    }
    return "unknown";
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    struct srv_server *srv = cls;
    struct srv_request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->job) {
        srv_sched_lock();
        if (r->watching) srv_sched_unwatch(r->job, &r->watch);
        srv_park_resume(srv, &r->susp); /* never parked here, but keep the list honest */
        /* a client that goes away stops its images' work */
        if (!r->job->async && !srv_job_state_terminal(r->job->state))
            srv_sched_cancel(r->job, SRV_E_CANCELLED, "the client disconnected");
        srv_sched_unlock();
    }
    struct srv_access_entry e = {
        .remote = r->remote, .method = r->method, .path = r->path, .request_id = r->request_id,
        .job_id = r->job ? r->job->id : r->job_id[0] ? r->job_id : NULL, .error = r->error_code, .termination = termination_name(toe),
        .status = r->status, .bytes = r->resp_bytes, .duration_ms = srv_ms_between(r->t_start, srv_now_ns())};
    srv_access_log_write(&e);
    srv_job_unref(r->job);
    srv_buf_clear(&r->body);
    free(r);
    atomic_fetch_sub(&srv->in_flight, 1);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    fputs("edmd: http: ", stderr);
    vfprintf(stderr, fmt, ap);
}

/* ---- start and stop --------------------------------------------------------------------- */

int srv_http_start(struct srv_server *srv, char *err, size_t err_size) {
    const struct srv_config *cfg = srv->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%ld", cfg->port);
    int gai = getaddrinfo(cfg->host && *cfg->host ? cfg->host : NULL, port, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, err_size, "host %s: %s", cfg->host, gai ? gai_strerror(gai) : "no address");
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)cfg->connection_timeout_s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->connection_limit,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        snprintf(err, err_size, "cannot listen on %s:%ld (in use, or not an address of this host)", cfg->host,
                 cfg->port);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : (uint16_t)cfg->port;
    return 0;
}

void srv_http_quiesce(struct srv_server *srv) {
    if (srv->daemon) {
        MHD_socket s = MHD_quiesce_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET) close(s);
    }
}

void srv_http_stop(struct srv_server *srv) {
    if (!srv->daemon) return;
    srv_park_resume_all(srv);
    MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
