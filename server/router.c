/*
 * router.c - the route table applied to a request (router.h, routes.h).
 *
 * Every decision here is made on MHD's first call, from the request line and the headers,
 * before a byte of body is read: first the message's framing, whatever the path (below);
 * then the path against every pattern (404; on the admin listener only the rows marked
 * SRV_ROUTE_ADMIN exist), CORS preflight (OPTIONS, answered without a key so browsers can
 * ask), the method against the matching rows (405 with Allow), then the chosen row's flags
 * in a fixed order: API key (401), draining (503), models loaded (503), and for a JSON or
 * form body its Content-Length (past max-body 413; MHD has no body cap of its own) and
 * Content-Type (415). Every refusal is counted (edm_rejections_total).
 *
 * Framing (RFC 9112 section 6): a request whose body length two parts of the chain could
 * read differently is refused with 400 and its connection closed (request smuggling):
 * Content-Length headers that disagree, Content-Length together with Transfer-Encoding
 * (6.1), Transfer-Encoding in HTTP/1.0 (6.1), or a Transfer-Encoding whose last coding is
 * not chunked (6.3). A coding edmd does not implement in front of chunked (gzip, chunked)
 * is a 501 (6.1), also closed. MHD itself only checks the first Transfer-Encoding header
 * for "chunked" and would read any other body until the connection closes, so these
 * answers must come before it reads one.
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

/* What the headers say about the body: every Content-Length and Transfer-Encoding. */
struct framing {
    int cl_count, cl_conflict;
    char cl_first[32];
    int te_count;
    char te[160]; /* the Transfer-Encoding values, joined with ", " (truncated: too long) */
};

static enum MHD_Result scan_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    struct framing *f = cls;
    if (!value) value = "";
    if (strcasecmp(key, "Content-Length") == 0) {
        if (f->cl_count++ == 0) snprintf(f->cl_first, sizeof f->cl_first, "%s", value);
        else if (strcmp(value, f->cl_first) != 0) f->cl_conflict = 1;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        size_t n = strlen(f->te);
        snprintf(f->te + n, sizeof f->te - n, "%s%s", f->te_count++ ? ", " : "", value);
    }
    return MHD_YES;
}

/* The transfer codings of f->te, last first: 0 fine (chunked alone), else the error. */
static enum srv_err check_codings(const struct framing *f, struct srv_error *e) {
    char list[sizeof f->te], *save = NULL;
    snprintf(list, sizeof list, "%s", f->te);
    int n = 0, chunked_at = -1;
    const char *other = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok += strspn(tok, " \t");
        size_t len = strlen(tok);
        while (len && (tok[len - 1] == ' ' || tok[len - 1] == '\t')) tok[--len] = '\0';
        if (!len) continue;
        if (strcasecmp(tok, "chunked") == 0) {
            if (chunked_at >= 0) return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "Transfer-Encoding names chunked twice");
            chunked_at = n;
        } else if (!other) {
            other = tok;
        }
        n++;
    }
    if (chunked_at < 0 || chunked_at != n - 1)
        return srv_error_set(e, SRV_E_BAD_REQUEST, NULL,
                             "the body's length cannot be determined: Transfer-Encoding must end with chunked "
                             "(RFC 9112 section 6.3)");
    if (other)
        return srv_error_set(e, SRV_E_NOT_IMPLEMENTED, NULL,
                             "Transfer-Encoding %.40s is not implemented (only chunked is)", other);
    return SRV_OK;
}

/* Framing that parts of a chain could read differently: 400 or 501, and the connection
 * closes. Sets r->body_announced. */
static enum srv_err check_framing(struct srv_request *r, const struct framing *f, struct srv_error *e) {
    r->body_announced = (f->cl_count && strtoull(f->cl_first, NULL, 10) > 0) || f->te_count;
    if (f->cl_conflict) {
        r->must_close = 1;
        return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "conflicting Content-Length headers");
    }
    if (!f->te_count) return SRV_OK;
    r->must_close = 1;
    if (f->cl_count)
        return srv_error_set(e, SRV_E_BAD_REQUEST, NULL,
                             "Content-Length together with Transfer-Encoding (RFC 9112 section 6.1)");
    if (r->http10)
        return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 section 6.1)");
    enum srv_err rc = check_codings(f, e);
    if (!rc) r->must_close = 0;
    return rc;
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

/* SRV_ROUTE_BODY and SRV_ROUTE_FORM: Content-Length and Content-Type, before the body is
 * read. */
static enum srv_err check_body_headers(struct srv_request *r, const struct framing *f, int form,
                                       struct srv_error *e) {
    if (f->cl_count) {
        char *end;
        errno = 0;
        unsigned long long cl = strtoull(f->cl_first, &end, 10);
        if (errno || end == f->cl_first || *end) return srv_error_set(e, SRV_E_BAD_REQUEST, NULL, "invalid Content-Length");
        if (cl > (unsigned long long)r->srv->cfg->max_body) return too_large(r->srv, e);
    }
    const char *ct = srv_request_header(r, "Content-Type");
    if (!r->body_announced) return SRV_OK;
    if (form && (!ct || !srv_media_type_is(ct, "multipart/form-data")))
        return srv_error_set(e, SRV_E_MEDIA_TYPE, NULL,
                             "the body must be multipart/form-data (OpenAI's images.edit and createVariation)");
    if (!form && (!ct || !is_json_type(ct)))
        return srv_error_set(e, SRV_E_MEDIA_TYPE, NULL, "the body must be application/json");
    return SRV_OK;
}

/* A row's flags, in the order of enum srv_route_flag. */
static enum srv_err check_flags(struct srv_request *r, unsigned flags, const struct framing *f,
                                struct srv_error *e) {
    struct srv_server *srv = r->srv;
    if (!(flags & SRV_ROUTE_PUBLIC) && !srv_auth_check(&srv->cfg->api_keys, srv_request_header(r, "Authorization")))
        return srv_error_set(e, SRV_E_UNAUTHORIZED, NULL, "a valid API key is required (Authorization: Bearer KEY)");
    if ((flags & SRV_ROUTE_SUBMIT) && atomic_load(&srv->draining))
        return srv_error_set(e, SRV_E_DRAINING, NULL, "the server is shutting down");
    if ((flags & SRV_ROUTE_ENGINE) && !atomic_load(&srv->ready))
        return srv_error_set(e, SRV_E_NOT_READY, NULL, "the server is still loading models");
    if (flags & (SRV_ROUTE_BODY | SRV_ROUTE_FORM)) return check_body_headers(r, f, flags & SRV_ROUTE_FORM, e);
    return SRV_OK;
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
    struct srv_error e;
    struct framing f = {0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, scan_framing, &f);
    if (check_framing(r, &f, &e)) return srv_respond_error(r, &e);
    for (size_t k = 0; k < srv_routes_count; k++) {
        const struct srv_route *row = &srv_routes[k];
        if (r->admin && !(row->flags & SRV_ROUTE_ADMIN)) continue;
        if (!match(row->pattern, r->path, &c)) continue;
        int fits = (row->methods & want) != 0;
        /* the captures of the row that runs, else of the first match (the access log names
         * the job of a 405) */
        if (!route && (fits || !allowed)) found = c;
        if (!route && fits) route = row;
        allowed |= row->methods;
    }
    if (!allowed) {
        srv_error_set(&e, SRV_E_NOT_FOUND, NULL, "no such endpoint");
        return srv_respond_error(r, &e);
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
        return srv_respond_error(r, &e);
    }
    if (check_flags(r, route->flags, &f, &e)) return srv_respond_error(r, &e);
    r->route = route;
    r->phase = SRV_PHASE_BODY;
    return MHD_YES;
}

enum MHD_Result srv_router_dispatch(struct srv_request *r) {
    if (r->too_large) {
        struct srv_error e;
        too_large(r->srv, &e);
        return srv_respond_error(r, &e);
    }
    return r->route->handler(r);
}
