/*
 * router.c - the route table applied to a request (router.h, routes.h).
 *
 * Every decision here is made on MHD's first call, from the request line and the headers,
 * before a byte of body is read: the path against every pattern (404), CORS preflight
 * (OPTIONS, answered without a key so browsers can ask), the method against the matching
 * rows (405 with Allow), then the chosen row's flags in a fixed order: API key (401),
 * draining (503), models loaded (503), and for a JSON body its Content-Length (conflicting
 * duplicates 400, past max-body 413; MHD has no body cap of its own) and Content-Type (415).
 * Every refusal is counted (edm_rejections_total).
 */
#include "router.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "negotiate.h"
#include "respond.h"
#include "routes.h"

static unsigned method_bit(const char *m) {
    if (strcmp(m, "GET") == 0) return SRV_GET;
    if (strcmp(m, "HEAD") == 0) return SRV_HEAD;
    if (strcmp(m, "POST") == 0) return SRV_POST;
    if (strcmp(m, "DELETE") == 0) return SRV_DELETE;
    if (strcmp(m, "OPTIONS") == 0) return SRV_OPTIONS;
    return 0;
}

/* ---- patterns --------------------------------------------------------------------------- */

/* The captures of one match, copied into the request once a row is chosen. */
struct captures {
    char id[64], model[136];
    int i, asset;
};

static _Noreturn void table_bug(const char *what, const char *pattern) {
    fprintf(stderr, "edmd: routes.c: %s in the pattern \"%s\"\n", what, pattern);
    abort(); /* a bug in the table, not in the request */
}

static int is_name(const char *name, size_t len, const char *want) {
    return strlen(want) == len && memcmp(name, want, len) == 0;
}

/* Matches the capture {name} at the start of p: how many characters it takes, or -1. */
static int capture(const char *pattern, const char *name, size_t len, const char *p, struct captures *c) {
    size_t n;
    if (is_name(name, len, "id")) {
        n = strcspn(p, "/");
        if (n == 0 || n >= sizeof c->id) return -1;
        memcpy(c->id, p, n);
        c->id[n] = '\0';
    } else if (is_name(name, len, "i")) {
        n = strspn(p, "0123456789");
        if (n == 0 || n > 6) return -1;
        c->i = atoi(p);
    } else if (is_name(name, len, "model")) {
        n = strlen(p);
        if (n == 0 || n > 128) return -1;
        memcpy(c->model, p, n + 1);
    } else if (is_name(name, len, "asset")) {
        c->asset = srv_web_find(p);
        if (c->asset < 0) return -1;
        n = strlen(p);
    } else {
        table_bug("an unknown capture", pattern);
    }
    return (int)n;
}

static int match(const char *pattern, const char *path, struct captures *c) {
    *c = (struct captures){0};
    const char *p = path;
    for (const char *q = pattern; *q;) {
        if (*q != '{') {
            if (*q++ != *p++) return 0;
            continue;
        }
        const char *end = strchr(q, '}');
        if (!end) table_bug("an unclosed {", pattern);
        int n = capture(pattern, q + 1, (size_t)(end - q - 1), p, c);
        if (n < 0) return 0;
        p += n;
        q = end + 1;
    }
    return *p == '\0';
}

/* ---- the checks of the flags ------------------------------------------------------------ */

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

/* JSON, or a form-encoded body (what `curl -d` sends), which the handler reads as JSON (and
 * refuses with 415 when it is not) */
static int is_json_type(const char *ct) {
    return srv_media_type_is(ct, "application/json") ||
           srv_media_type_is(ct, "application/x-www-form-urlencoded");
}

static enum srv_err too_large(const struct srv_server *srv, struct srv_error *e) {
    return srv_error_set(e, SRV_E_TOO_LARGE, NULL, "the body is larger than %ld bytes", srv->cfg->max_body);
}

/* SRV_ROUTE_BODY: Content-Length and Content-Type, before the body is read. */
static enum srv_err check_body_headers(struct srv_request *r, struct srv_error *e) {
    struct length_scan ls = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_lengths, &ls);
    if (ls.conflict) return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "conflicting Content-Length headers");
    const char *te = srv_request_header(r, "Transfer-Encoding");
    int has_body = (ls.count && strcmp(ls.first, "0") != 0) || te;
    if (ls.count) {
        char *end;
        errno = 0;
        unsigned long long cl = strtoull(ls.first, &end, 10);
        if (errno || end == ls.first || *end) return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "invalid Content-Length");
        if (cl > (unsigned long long)r->srv->cfg->max_body) return too_large(r->srv, e);
    }
    const char *ct = srv_request_header(r, "Content-Type");
    if (has_body && (!ct || !is_json_type(ct)))
        return srv_error_set(e, SRV_E_MEDIA_TYPE, NULL, "the body must be application/json");
    return SRV_OK;
}

/* A row's flags, in the order of enum srv_route_flag. */
static enum srv_err check_flags(struct srv_request *r, unsigned flags, struct srv_error *e) {
    struct srv_server *srv = r->srv;
    if (!(flags & SRV_ROUTE_PUBLIC) && !srv_auth_check(&srv->cfg->api_keys, srv_request_header(r, "Authorization")))
        return srv_error_set(e, SRV_E_UNAUTHORIZED, NULL, "a valid API key is required (Authorization: Bearer KEY)");
    if ((flags & SRV_ROUTE_SUBMIT) && atomic_load(&srv->draining))
        return srv_error_set(e, SRV_E_DRAINING, NULL, "the server is shutting down");
    if ((flags & SRV_ROUTE_ENGINE) && !atomic_load(&srv->ready))
        return srv_error_set(e, SRV_E_NOT_READY, NULL, "the server is still loading models");
    return flags & SRV_ROUTE_BODY ? check_body_headers(r, e) : SRV_OK;
}

/* ---- the first call and the last -------------------------------------------------------- */

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

enum MHD_Result srv_router_begin(struct srv_request *r) {
    unsigned m = method_bit(r->method), want = m == SRV_HEAD ? SRV_GET : m, allowed = 0;
    const struct srv_route *route = NULL;
    struct captures c, found = {0};
    for (size_t k = 0; k < srv_routes_count; k++) {
        const struct srv_route *row = &srv_routes[k];
        if (!match(row->pattern, r->path, &c)) continue;
        int fits = (row->methods & want) != 0;
        /* the captures of the row that runs, else of the first match (the access log names
         * the job of a 405) */
        if (!route && (fits || !allowed)) found = c;
        if (!route && fits) route = row;
        allowed |= row->methods;
    }
    struct srv_error e;
    if (!allowed) {
        srv_error_set(&e, SRV_E_NOT_FOUND, NULL, "no such endpoint");
        return srv_respond_rejection(r, &e);
    }
    snprintf(r->job_id, sizeof r->job_id, "%s", found.id);
    snprintf(r->model_id, sizeof r->model_id, "%s", found.model);
    r->image_index = found.i;
    r->asset = found.asset;
    snprintf(r->allow, sizeof r->allow, "%s%s%sOPTIONS", allowed & SRV_GET ? "GET, HEAD, " : "",
             allowed & SRV_POST ? "POST, " : "", allowed & SRV_DELETE ? "DELETE, " : "");
    if (m == SRV_OPTIONS) return preflight(r);
    if (!route) {
        srv_error_set(&e, SRV_E_METHOD, NULL, "%.16s is not allowed here (allowed: %s)", r->method, r->allow);
        return srv_respond_rejection(r, &e);
    }
    if (check_flags(r, route->flags, &e)) return srv_respond_rejection(r, &e);
    r->route = route;
    r->phase = SRV_PHASE_BODY;
    return MHD_YES;
}

enum MHD_Result srv_router_dispatch(struct srv_request *r) {
    if (r->too_large) {
        struct srv_error e;
        too_large(r->srv, &e);
        return srv_respond_rejection(r, &e);
    }
    return r->route->handler(r);
}
