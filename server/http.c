/*
 * http.c - the libmicrohttpd daemon and the life of a request in it (http.h).
 *
 * Threading: an internal epoll polling thread pool (--threads) with suspend/resume
 * (MHD_ALLOW_SUSPEND_RESUME), so a thread never blocks on a job: a waiting request is
 * parked (park.c) and costs nothing until the scheduler wakes it.
 *
 * Two listeners run the same handlers: the API listener, and the optional admin listener
 * (--admin-port) with its own small connection budget, which serves only the routes marked
 * SRV_ROUTE_ADMIN (probes and metrics), so that a flood of the API port cannot starve the
 * liveness probe. Every connection of either is tracked by conn.c, which closes those that
 * take too long over a request's headers or body; the API listener also caps connections
 * per client address (MHD's per-IP limit).
 *
 * MHD calls the access handler several times per request. The first call makes the
 * request's context (request id, CORS origin) and hands it to the router (router.c), which
 * answers early errors from the headers alone. Later calls collect the body: MHD has no
 * body cap, so a chunked body is counted as it arrives; past max-body it is discarded (the
 * router answers 413 at its end), and a client that sends more than SRV_DISCARD_MAX_BYTES
 * is disconnected. The last call runs the route's handler, or a parked request's resume
 * handler. The completion callback counts and logs a request that ended without an answer
 * (499: the client left; 408: a deadline), hands the socket of one answered before its body
 * was read to the lingering close (linger.h), writes the access log line and frees the
 * context.
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
#include "conn.h"
#include "linger.h"
#include "metrics.h"
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
                                       const char *method, const char *version) {
    struct srv_request *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->srv = srv;
    r->conn = conn;
    r->sconn = srv_conn_of(conn);
    r->admin = srv_conn_is_admin(r->sconn);
    r->http10 = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;
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
    struct srv_server *srv = cls;
    struct srv_request *r = *con_cls;
    if (!r) {
        r = request_new(srv, conn, url, method, version);
        if (!r) return MHD_NO;
        atomic_fetch_add(&srv->in_flight, 1);
        *con_cls = r;
        srv_conn_set_phase(r->sconn, SRV_CONN_BODY);
        enum MHD_Result ret = srv_router_begin(r);
        if (r->phase == SRV_PHASE_DONE) {
            r->answered_early = 1;
            srv_conn_set_phase(r->sconn, SRV_CONN_BUSY);
        }
        return ret;
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
            if (r->discarded > SRV_DISCARD_MAX_BYTES) return MHD_NO;
        }
        return MHD_YES;
    }
    switch (r->phase) {
    case SRV_PHASE_BODY:
        srv_conn_set_phase(r->sconn, SRV_CONN_BUSY);
        return srv_router_dispatch(r);
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
    if (!r->status) {
        /* no answer went out: the client left (nginx's 499), or a deadline closed it */
        r->status = srv_conn_timed_out(r->sconn) || toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499;
        srv_metrics_http_response(r->status);
    } else if (r->answered_early && r->body_announced && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        /* MHD 0.9.75 closes every connection whose answer was queued from the headers alone
         * (MHD_queue_response sets discard_request), unread body and all: linger, so that a
         * client still writing that body can finish and read the answer */
        srv_linger_add(r->susp.sock >= 0 ? dup(r->susp.sock) : -1);
    }
    srv_conn_set_phase(r->sconn, SRV_CONN_HEADERS); /* the next request's clock, if any */
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

#define ADMIN_CONNECTIONS 32u /* the admin listener's budget: probes and scrapes are few */
#define ADMIN_PER_IP 16u      /* so one address (a runaway scraper) cannot take all of it */

/* One listener on host:port; NULL with err filled when it cannot listen. */
static struct MHD_Daemon *listen_on(struct srv_server *srv, const char *host, long port, int admin, char *err,
                                    size_t err_size) {
    const struct srv_config *cfg = srv->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[16];
    snprintf(service, sizeof service, "%ld", port);
    int gai = getaddrinfo(host && *host ? host : NULL, service, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(err, err_size, "%shost %s: %s", admin ? "admin-" : "", host, gai ? gai_strerror(gai) : "no address");
        return NULL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (!admin) flags |= MHD_ALLOW_SUSPEND_RESUME;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    MHD_NotifyConnectionCallback notify = admin ? srv_conn_notify_admin : srv_conn_notify_api;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL},
        {MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, admin ? ADMIN_CONNECTIONS : cfg->connection_limit, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, admin ? ADMIN_PER_IP : cfg->per_ip_connection_limit, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, 64 * 1024, NULL},
        {MHD_OPTION_LISTEN_BACKLOG_SIZE, admin ? 64 : 1024, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)notify, NULL},
        {MHD_OPTION_END, 0, NULL}, /* the API listener's thread pool, when it has one */
        {MHD_OPTION_END, 0, NULL}};
    if (!admin && cfg->threads > 1) /* MHD warns about a pool of 1 */
        opts[sizeof opts / sizeof opts[0] - 2] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, NULL};
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY,
                                            opts, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d)
        snprintf(err, err_size, "cannot listen on %s:%ld%s (in use, or not an address of this host)", host, port,
                 admin ? " (admin)" : "");
    return d;
}

static uint16_t bound_port(struct MHD_Daemon *d, long configured) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? di->port : (uint16_t)configured;
}

int srv_http_start(struct srv_server *srv, char *err, size_t err_size) {
    const struct srv_config *cfg = srv->cfg;
    srv_conn_configure(cfg->header_timeout_s, cfg->body_timeout_s);
    if (srv_linger_start()) {
        snprintf(err, err_size, "cannot start the lingering-close thread");
        return -1;
    }
    srv->daemon = listen_on(srv, cfg->host, cfg->port, 0, err, err_size);
    if (!srv->daemon) return -1;
    srv->port = bound_port(srv->daemon, cfg->port);
    if (cfg->admin_port >= 0) {
        const char *host = cfg->admin_host && *cfg->admin_host ? cfg->admin_host : cfg->host;
        srv->admin_daemon = listen_on(srv, host, cfg->admin_port, 1, err, err_size);
        if (!srv->admin_daemon) return -1;
        srv->admin_port = bound_port(srv->admin_daemon, cfg->admin_port);
    }
    return 0;
}

void srv_http_quiesce(struct srv_server *srv) {
    if (srv->daemon) {
        MHD_socket s = MHD_quiesce_daemon(srv->daemon);
        if (s != MHD_INVALID_SOCKET) close(s);
    }
}

void srv_http_stop(struct srv_server *srv) {
    if (srv->daemon) {
        srv_park_resume_all(srv);
        MHD_stop_daemon(srv->daemon);
        srv->daemon = NULL;
    }
    if (srv->admin_daemon) MHD_stop_daemon(srv->admin_daemon);
    srv->admin_daemon = NULL;
    srv_linger_stop();
}
