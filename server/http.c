/*
 * http.c - the libmicrohttpd daemon, routing and the request checks of the first call (http.h).
 *
 * Threading: an internal epoll polling thread pool (--threads) with suspend/resume
 * (MHD_ALLOW_SUSPEND_RESUME), so a thread never blocks on a job: a waiting request is
 * parked (park.c) and costs nothing until the scheduler wakes it.
 *
 * Early answers: routing (404, 405), CORS preflight, the API key (401), readiness (503),
 * Content-Length (413; conflicting duplicates 400) and Content-Type (415) are all decided on
 * the first call, from the headers, before a byte of body is read. MHD has no body cap, so
 * a chunked body is also counted as it arrives; past max-body it is discarded and answered
 * 413, and a client that keeps sending far past it is disconnected.
 *
 * Responses, early ones included, go through respond.c, which adds the common headers.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "access_log.h"
#include "auth.h"
#include "park.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

/* ---- routing ---------------------------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_DELETE = 4, M_HEAD = 8, M_OPTIONS = 16 };

static int route_methods(enum srv_route route) {
    switch (route) {
    case SRV_ROUTE_GENERATE:
    case SRV_ROUTE_JOBS: return M_POST;
    case SRV_ROUTE_JOB: return M_GET | M_HEAD | M_DELETE;
    case SRV_ROUTE_NONE: return 0;
    default: return M_GET | M_HEAD;
    }
}

static const char *allow_header(int methods) {
    if (methods == M_POST) return "POST, OPTIONS";
    if (methods & M_DELETE) return "GET, HEAD, DELETE, OPTIONS";
    return "GET, HEAD, OPTIONS";
}

static int method_bit(const char *m) {
    if (strcmp(m, "GET") == 0) return M_GET;
    if (strcmp(m, "POST") == 0) return M_POST;
    if (strcmp(m, "DELETE") == 0) return M_DELETE;
    if (strcmp(m, "HEAD") == 0) return M_HEAD;
    if (strcmp(m, "OPTIONS") == 0) return M_OPTIONS;
    return 0;
}

/* Copies one path segment (up to '/' or the end) into out; returns its length or -1. */
static int segment(const char *p, char *out, size_t size) {
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= size) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return (int)n;
}

static enum srv_route route_match(const char *path, struct srv_request *r) {
    static const struct {
        const char *path;
        enum srv_route route;
    } fixed[] = {{"/healthz", SRV_ROUTE_HEALTHZ},           {"/readyz", SRV_ROUTE_READYZ},
                 {"/metrics", SRV_ROUTE_METRICS},           {"/openapi.json", SRV_ROUTE_OPENAPI},
                 {"/v1/models", SRV_ROUTE_MODELS},          {"/v1/images/generations", SRV_ROUTE_GENERATE},
                 {"/v1/jobs", SRV_ROUTE_JOBS}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(path, fixed[i].path) == 0) return fixed[i].route;
    int asset = srv_web_find(path);
    if (asset >= 0) {
        r->image_index = asset;
        return SRV_ROUTE_WEB;
    }
    if (strncmp(path, "/v1/jobs/", 9) != 0) return SRV_ROUTE_NONE;
    const char *p = path + 9;
    int n = segment(p, r->job_id, sizeof r->job_id);
    if (n < 0) return SRV_ROUTE_NONE;
    p += n;
    if (*p == '\0') return SRV_ROUTE_JOB;
    if (strcmp(p, "/events") == 0) return SRV_ROUTE_JOB_EVENTS;
    if (strncmp(p, "/images/", 8) == 0) {
        p += 8;
        size_t digits = strspn(p, "0123456789");
        if (digits == 0 || digits > 6 || p[digits] != '\0') return SRV_ROUTE_NONE;
        r->image_index = atoi(p);
        return SRV_ROUTE_JOB_IMAGE;
    }
    return SRV_ROUTE_NONE;
}

static enum MHD_Result reject(struct srv_request *r, enum srv_err code, const char *param,
                              const char *message) {
    struct srv_error e;
    srv_error_set(&e, code, param, "%s", message);
    return srv_respond_rejection(r, &e);
}

/* ---- first call: the checks that need only the headers ---------------------------------- */

struct length_scan {
    int count, conflict;
    char first[32];
};

static enum MHD_Result scan_lengths(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    struct length_scan *ls = cls;
    if (strcasecmp(key, "Content-Length") != 0) return MHD_YES;
    if (ls->count++ == 0) snprintf(ls->first, sizeof ls->first, "%s", value ? value : "");
    else if (!value || strcmp(value, ls->first) != 0) ls->conflict = 1;
    return MHD_YES;
}

static int is_json_type(const char *ct) {
    if (strncasecmp(ct, "application/json", 16) != 0) return 0;
    char c = ct[16];
    return c == '\0' || c == ';' || c == ' ' || c == '\t';
}

static const char *cors_allowed(struct srv_request *r) {
    const struct srv_strlist *origins = &r->srv->cfg->cors_origins;
    const char *origin = srv_request_header(r, "Origin");
    if (!origin || origins->n == 0) return NULL;
    for (int i = 0; i < origins->n; i++)
        if (strcmp(origins->items[i], "*") == 0 || strcmp(origins->items[i], origin) == 0) return origin;
    return NULL;
}

static enum MHD_Result preflight(struct srv_request *r) {
    const char *headers[] = {"Allow", r->allow, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    if (r->cors_origin) {
        headers[2] = "Access-Control-Allow-Methods";
        headers[3] = r->allow;
        headers[4] = "Access-Control-Allow-Headers";
        headers[5] = "Authorization, Content-Type, Accept, X-Request-Id";
        headers[6] = "Access-Control-Max-Age";
        headers[7] = "600";
    }
    return srv_respond(r, 204, NULL, NULL, 0, headers);
}

static enum MHD_Result first_call(struct srv_request *r, const char *url, const char *method) {
    struct srv_server *srv = r->srv;
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->path, sizeof r->path, "%s", url);
    r->route = route_match(url, r);
    r->cors_origin = cors_allowed(r);

    const char *rid = srv_request_header(r, "X-Request-Id");
    size_t rid_len = rid ? strlen(rid) : 0;
    if (rid && rid_len > 0 && rid_len < sizeof r->request_id && strspn(rid, "abcdefghijklmnopqrstuvwxyz"
                                                                            "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                                            "0123456789-_.:") == rid_len)
        snprintf(r->request_id, sizeof r->request_id, "%s", rid);
    else
        srv_random_id("req_", r->request_id, sizeof r->request_id);

    if (r->route == SRV_ROUTE_NONE) return reject(r, SRV_E_NOT_FOUND, NULL, "no such endpoint");
    int methods = route_methods(r->route), m = method_bit(method);
    snprintf(r->allow, sizeof r->allow, "%s", allow_header(methods));
    if (m == M_OPTIONS) return preflight(r);
    if (!(m & methods)) {
        char msg[128];
        snprintf(msg, sizeof msg, "%.16s is not allowed here (allowed: %s)", method, r->allow);
        return reject(r, SRV_E_METHOD, NULL, msg);
    }
    int exempt = r->route == SRV_ROUTE_HEALTHZ || r->route == SRV_ROUTE_READYZ || r->route == SRV_ROUTE_METRICS ||
                 r->route == SRV_ROUTE_WEB;
    if (!exempt && !srv_auth_check(&srv->cfg->api_keys, srv_request_header(r, "Authorization")))
        return reject(r, SRV_E_UNAUTHORIZED, NULL, "a valid API key is required (Authorization: Bearer KEY)");

    int needs_engine = r->route >= SRV_ROUTE_MODELS;
    if (needs_engine && m == M_POST && atomic_load(&srv->draining))
        return reject(r, SRV_E_DRAINING, NULL, "the server is shutting down");
    if (needs_engine && !atomic_load(&srv->ready))
        return reject(r, SRV_E_NOT_READY, NULL, "the server is still loading models");

    if (m == M_POST) {
        struct length_scan ls = {0};
        MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_lengths, &ls);
        if (ls.conflict) return reject(r, SRV_E_BAD_REQUEST, NULL, "conflicting Content-Length headers");
        const char *te = srv_request_header(r, "Transfer-Encoding");
        int has_body = (ls.count && strcmp(ls.first, "0") != 0) || te;
        if (ls.count) {
            char *end;
            errno = 0;
            unsigned long long cl = strtoull(ls.first, &end, 10);
            if (errno || end == ls.first || *end) return reject(r, SRV_E_BAD_REQUEST, NULL, "invalid Content-Length");
            if (cl > (unsigned long long)srv->cfg->max_body) {
                char msg[96];
                snprintf(msg, sizeof msg, "the body is larger than %ld bytes", srv->cfg->max_body);
                return reject(r, SRV_E_TOO_LARGE, NULL, msg);
            }
        }
        const char *ct = srv_request_header(r, "Content-Type");
        if (has_body && (!ct || !is_json_type(ct)))
            return reject(r, SRV_E_MEDIA_TYPE, NULL, "the body must be application/json");
    }
    r->phase = SRV_PHASE_BODY;
    return MHD_YES;
}

/* ---- the access handler ----------------------------------------------------------------- */

static enum MHD_Result dispatch(struct srv_request *r) {
    if (r->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "the body is larger than %ld bytes", r->srv->cfg->max_body);
        return reject(r, SRV_E_TOO_LARGE, NULL, msg);
    }
    int m = method_bit(r->method);
    switch (r->route) {
    case SRV_ROUTE_HEALTHZ: return srv_api_healthz(r);
    case SRV_ROUTE_READYZ: return srv_api_readyz(r);
    case SRV_ROUTE_METRICS: return srv_api_metrics(r);
    case SRV_ROUTE_OPENAPI: return srv_api_openapi(r);
    case SRV_ROUTE_WEB: return srv_api_web(r);
    case SRV_ROUTE_MODELS: return srv_api_models(r);
    case SRV_ROUTE_GENERATE: return srv_api_generate(r);
    case SRV_ROUTE_JOBS: return srv_api_jobs_create(r);
    case SRV_ROUTE_JOB: return m == M_DELETE ? srv_api_job_delete(r) : srv_api_job_get(r);
    case SRV_ROUTE_JOB_EVENTS: return srv_api_job_events(r);
    case SRV_ROUTE_JOB_IMAGE: return srv_api_job_image(r);
    case SRV_ROUTE_NONE: break;
    }
    return reject(r, SRV_E_NOT_FOUND, NULL, "no such endpoint");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    struct srv_server *srv = cls;
    struct srv_request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->srv = srv;
        r->conn = conn;
        r->t_start = srv_now_ns();
        r->susp.sock = -1;
        srv_buf_init(&r->body);
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
        atomic_fetch_add(&srv->in_flight, 1);
        *con_cls = r;
        return first_call(r, url, method);
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
    case SRV_PHASE_BODY: return dispatch(r);
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
