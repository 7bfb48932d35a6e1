/*
 * routes.h - the API's endpoints: the handlers (api_*.c, sse.c), called once the request's
 * body is complete.
 */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include "errors.h"
#include "job.h"
#include "request.h"

enum MHD_Result srv_api_healthz(struct srv_request *r);
enum MHD_Result srv_api_readyz(struct srv_request *r);
enum MHD_Result srv_api_metrics(struct srv_request *r);
enum MHD_Result srv_api_openapi(struct srv_request *r);
enum MHD_Result srv_api_models(struct srv_request *r);
enum MHD_Result srv_api_generate(struct srv_request *r);
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

#endif /* SRV_ROUTES_H */
