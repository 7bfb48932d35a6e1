/*
 * routes.c - the route table (routes.h): every endpoint of the API, with what the router
 * checks before its handler runs.
 *
 * Why the flags fall as they do: probes (/healthz, /readyz), scrapers (/metrics) and the web
 * page (it asks for a key when the API answers 401) carry no secrets, so they are PUBLIC;
 * /openapi.json needs a key but not the models. Everything under /v1/ needs the models
 * loaded. Only the POSTs start work, so only they are refused while draining, while
 * reading and cancelling jobs goes on (a client can still collect its results). OpenAI's
 * edits and variations take multipart/form-data (FORM), the rest JSON (BODY). Probes and
 * scrapers are also ADMIN: the admin listener answers them with its own connections, so a
 * flood of the API port cannot fail a liveness probe. The order of rows matters only
 * between patterns that match the same path; none do today.
 */
#include "routes.h"

#define GET SRV_GET
#define POST SRV_POST
#define DELETE SRV_DELETE
#define PUBLIC SRV_ROUTE_PUBLIC
#define ENGINE SRV_ROUTE_ENGINE
#define SUBMIT SRV_ROUTE_SUBMIT
#define BODY SRV_ROUTE_BODY
#define ADMIN SRV_ROUTE_ADMIN
#define FORM SRV_ROUTE_FORM

const struct srv_route srv_routes[] = {
    {GET,    "/healthz",                  PUBLIC | ADMIN,         srv_api_healthz},
    {GET,    "/readyz",                   PUBLIC | ADMIN,         srv_api_readyz},
    {GET,    "/metrics",                  PUBLIC | ADMIN,         srv_api_metrics},
    {GET,    "/openapi.json",             0,                      srv_api_openapi},
    {GET,    "/v1/models",                ENGINE,                 srv_api_models},
    {GET,    "/v1/models/{model}",        ENGINE,                 srv_api_model},
    {POST,   "/v1/images/generations",    ENGINE | SUBMIT | BODY, srv_api_generate},
    {POST,   "/v1/images/edits",          ENGINE | SUBMIT | FORM, srv_api_edits},
    {POST,   "/v1/images/variations",     ENGINE | SUBMIT | FORM, srv_api_variations},
    {GET,    "/v1/jobs",                  ENGINE,                 srv_api_jobs_list},
    {POST,   "/v1/jobs",                  ENGINE | SUBMIT | BODY, srv_api_jobs_create},
    {GET,    "/v1/jobs/{id}",             ENGINE,                 srv_api_job_get},
    {DELETE, "/v1/jobs/{id}",             ENGINE,                 srv_api_job_delete},
    {GET,    "/v1/jobs/{id}/events",      ENGINE,                 srv_api_job_events},
    {GET,    "/v1/jobs/{id}/images/{i}",  ENGINE,                 srv_api_job_image},
    {GET,    "{asset}",                   PUBLIC,                 srv_api_web},
};
const size_t srv_routes_count = sizeof srv_routes / sizeof srv_routes[0];
