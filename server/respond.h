/*
 * respond.h - answering a request: bytes, JSON or an error, with the headers every response
 * carries. Handlers and the router answer through these and nothing else; they know nothing
 * of routes or of the daemon.
 *
 * Ownership: body is malloc'd and taken (NULL with len 0: an empty body); a json_t body is
 * taken (its reference is dropped). headers: NULL or {"Name", "value", ..., NULL}, copied.
 * All return what MHD's access handler must return.
 */
#ifndef SRV_RESPOND_H
#define SRV_RESPOND_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

#include "errors.h"
#include "request.h"

enum MHD_Result srv_respond(struct srv_request *r, int status, const char *content_type, char *body,
                            size_t len, const char *const *headers);
enum MHD_Result srv_respond_json(struct srv_request *r, int status, json_t *body, const char *const *headers);
/* The error's status and {"error": ...} body, with Retry-After (429, 503), Allow (405: from
 * r->allow) or WWW-Authenticate (401) as the code asks. Counted in edm_rejections_total,
 * unless the request holds a job (r->job): then the error is that job's outcome, counted in
 * edm_requests_total. */
enum MHD_Result srv_respond_error(struct srv_request *r, const struct srv_error *e);
/* srv_respond_error's answer, not counted: an error status that reports a state (the
 * server's health) rather than refusing the request. */
enum MHD_Result srv_respond_report(struct srv_request *r, const struct srv_error *e);
/* Queues an MHD response made elsewhere (static data, SSE), adding the common headers;
 * takes it. */
enum MHD_Result srv_respond_queue(struct srv_request *r, int status, struct MHD_Response *resp);

#endif /* SRV_RESPOND_H */
