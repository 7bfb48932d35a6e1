/*
 * routes.h - the API's endpoints: one table of routes (routes.c) and their handlers
 * (api_*.c, sse.c). A new endpoint is one row and one handler.
 *
 * A row is {methods, path pattern, flags, handler}. The router (router.c) matches the path
 * against every pattern, answers 404 when none matches, OPTIONS and 405 with the union of
 * the matching rows' methods, and otherwise applies the row's flags before its handler
 * runs. HEAD goes wherever GET does (MHD drops the body); OPTIONS is answered for every
 * path that exists (CORS preflight, which is never asked for a key).
 *
 * Patterns are literal text with captures, each written into the request:
 *   {id}     one path segment of 1..63 characters        -> r->job_id
 *   {i}      1..6 decimal digits                         -> r->image_index
 *   {asset}  the rest of the path, naming a file of the
 *            web page (server/web/; "/" is /index.html)  -> r->asset
 *   {model}  the rest of the path, 1..128 characters
 *            (model names may hold '/')                  -> r->model_id
 */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stddef.h>

#include "errors.h"
#include "job.h"
#include "request.h"

enum srv_method { SRV_GET = 1, SRV_HEAD = 2, SRV_POST = 4, SRV_DELETE = 8, SRV_OPTIONS = 16 };

/* What the router checks, in this order, before the handler runs (all from the headers). */
enum srv_route_flag {
    SRV_ROUTE_PUBLIC = 1, /* no API key needed (401 otherwise); a new row is protected by default */
    SRV_ROUTE_SUBMIT = 2, /* starts new work: 503 "draining" after SIGTERM */
    SRV_ROUTE_ENGINE = 4, /* needs the models loaded: 503 "not_ready" until they are */
    SRV_ROUTE_BODY = 8,   /* takes a JSON body: Content-Length (413) and Content-Type (415) */
    SRV_ROUTE_ADMIN = 16, /* also served by the admin listener (--admin-port), which serves
                             nothing else */
    SRV_ROUTE_FORM = 32,  /* takes a multipart/form-data body: Content-Length (413) and
                             Content-Type (415) */
};

struct srv_route {
    unsigned methods;    /* enum srv_method: SRV_GET, SRV_POST, SRV_DELETE */
    const char *pattern; /* "/v1/jobs/{id}/images/{i}" */
    unsigned flags;      /* enum srv_route_flag */
    srv_handler handler;
};

extern const struct srv_route srv_routes[];
extern const size_t srv_routes_count;

/* Handlers, called once the request's body is complete. */
enum MHD_Result srv_api_healthz(struct srv_request *r);
enum MHD_Result srv_api_readyz(struct srv_request *r);
enum MHD_Result srv_api_metrics(struct srv_request *r);
enum MHD_Result srv_api_openapi(struct srv_request *r);
enum MHD_Result srv_api_models(struct srv_request *r);
enum MHD_Result srv_api_model(struct srv_request *r);
enum MHD_Result srv_api_generate(struct srv_request *r);
enum MHD_Result srv_api_edits(struct srv_request *r);
enum MHD_Result srv_api_variations(struct srv_request *r);
enum MHD_Result srv_api_jobs_create(struct srv_request *r);
enum MHD_Result srv_api_jobs_list(struct srv_request *r);
enum MHD_Result srv_api_job_get(struct srv_request *r);
enum MHD_Result srv_api_job_delete(struct srv_request *r);
enum MHD_Result srv_api_job_events(struct srv_request *r);
enum MHD_Result srv_api_job_image(struct srv_request *r);
enum MHD_Result srv_api_web(struct srv_request *r);

/* The index in srv_assets of the web file served at path ("/" is /index.html), or -1
 * (api_web.c; the {asset} capture). */
int srv_web_find(const char *path);
/* Parses a generation body into a job ready to submit (api_generate.c); shared by the sync
 * and async endpoints. */
enum srv_err srv_api_make_job(struct srv_request *r, int async, struct srv_job **out,
                              struct srv_error *err);
/* A synchronous job's whole answer (api_generate.c): Accept (JSON, or the PNG for n = 1),
 * the queue, the parked connection, then OpenAI's Images response or the job's error. Takes
 * the caller's reference to job. */
enum MHD_Result srv_api_answer_job(struct srv_request *r, struct srv_job *job);

#endif /* SRV_ROUTES_H */
