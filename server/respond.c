/*
 * respond.c - responses (respond.h).
 *
 * Every response passes srv_respond_queue, which adds X-Request-Id, Server,
 * X-Content-Type-Options: nosniff (a browser must never guess a type: an error body echoes
 * request bytes), the CORS headers (when the request's Origin is allowed), Cache-Control
 * (no-store unless the handler chose) and Connection: close while draining or after broken
 * framing; and counts the status in metrics. Every response with a body names its
 * Content-Type. Errors all take the one shape of errors.c, and each is counted once in
 * edm_rejections_total unless it is the outcome of the request's own job (counted in
 * edm_requests_total) or a health report. MHD 0.9.75 has no _from_buffer_copy, so a malloc'd
 * body is handed over with its free callback (DESIGN.md, libmicrohttpd lessons).
 */
#include "respond.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

enum MHD_Result srv_respond_queue(struct srv_request *r, int status, struct MHD_Response *resp) {
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    MHD_add_response_header(resp, "Server", "edmd");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (!MHD_get_response_header(resp, "Cache-Control"))
        MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Vary", "Origin");
        MHD_add_response_header(resp, "Access-Control-Expose-Headers",
                                "Location, Retry-After, Server-Timing, X-Request-Id, X-EDM-NFE, "
                                "X-EDM-Seed, X-EDM-Class-Label, X-EDM-Steps");
    }
    if (r->must_close || atomic_load(&r->srv->draining)) MHD_add_response_header(resp, "Connection", "close");
    r->status = status;
    r->phase = SRV_PHASE_DONE;
    srv_metrics_http_response(status);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result srv_respond(struct srv_request *r, int status, const char *content_type, char *body,
                            size_t len, const char *const *headers) {
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer_with_free_callback(len, body, free)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (content_type) MHD_add_response_header(resp, "Content-Type", content_type);
    for (int i = 0; headers && headers[i]; i += 2) MHD_add_response_header(resp, headers[i], headers[i + 1]);
    r->resp_bytes = len;
    return srv_respond_queue(r, status, resp);
}

enum MHD_Result srv_respond_json(struct srv_request *r, int status, json_t *body, const char *const *headers) {
    char *text = body ? json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(body);
    if (!text) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_INTERNAL, NULL, "out of memory writing the response");
        return srv_respond_error(r, &e);
    }
    return srv_respond(r, status, "application/json", text, strlen(text), headers);
}

enum MHD_Result srv_respond_report(struct srv_request *r, const struct srv_error *e) {
    size_t len = 0;
    char *body = srv_error_json(e, &len);
    int status = srv_error_http_status(e->code);
    char retry[16];
    snprintf(retry, sizeof retry, "%ld", r->srv->cfg->retry_after_s);
    const char *headers[8];
    int h = 0;
    if (srv_error_retryable(e->code)) {
        headers[h++] = "Retry-After";
        headers[h++] = retry;
    }
    if (e->code == SRV_E_METHOD) {
        headers[h++] = "Allow";
        headers[h++] = r->allow;
    }
    if (e->code == SRV_E_UNAUTHORIZED) {
        headers[h++] = "WWW-Authenticate";
        headers[h++] = "Bearer realm=\"edmd\"";
    }
    headers[h] = NULL;
    snprintf(r->error_code, sizeof r->error_code, "%s", srv_error_code_name(e->code));
    return srv_respond(r, status, "application/json", body, body ? len : 0, headers);
}

enum MHD_Result srv_respond_error(struct srv_request *r, const struct srv_error *e) {
    if (!r->job) srv_metrics_rejection(e->code); /* a job's outcome: edm_requests_total */
    return srv_respond_report(r, e);
}
