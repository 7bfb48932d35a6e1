/*
 * api_status.c - GET /healthz, /readyz, /metrics, /v1/models and /openapi.json.
 *
 * /healthz is liveness: 200 unless a compute device failed (then the process should be
 * restarted). /readyz is readiness: 503 while loading models and after SIGTERM, so a load
 * balancer stops sending work before the drain begins, and while a shared job store
 * (Redis) cannot be reached, saying why. Neither needs an API key, nor does
 * /metrics (scrapers rarely carry secrets).
 */
#include <stdlib.h>
#include <string.h>

#include "jobstore.h"
#include "metrics.h"
#include "openapi_doc.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

enum MHD_Result srv_api_healthz(struct srv_request *r) {
    if (srv_sched_device_failed()) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_UNAVAILABLE, NULL, "a compute device failed; restart the server");
        return srv_respond_error(r, &e);
    }
    return srv_respond_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

enum MHD_Result srv_api_readyz(struct srv_request *r) {
    struct srv_error e;
    if (atomic_load(&r->srv->draining)) {
        srv_error_set(&e, SRV_E_DRAINING, NULL, "draining: finishing the work in flight, then exiting");
        return srv_respond_error(r, &e);
    }
    if (!atomic_load(&r->srv->ready)) {
        srv_error_set(&e, SRV_E_NOT_READY, NULL, "loading models");
        return srv_respond_error(r, &e);
    }
    if (srv_sched_device_failed()) {
        srv_error_set(&e, SRV_E_UNAVAILABLE, NULL, "a compute device failed");
        return srv_respond_error(r, &e);
    }
    char why[256];
    if (!srv_jobstore()->ready(why, sizeof why)) {
        srv_error_set(&e, SRV_E_STORE_UNAVAILABLE, NULL, "the job store is unavailable: %s", why);
        return srv_respond_error(r, &e);
    }
    return srv_respond_json(r, 200, json_pack("{s:s}", "status", "ready"), NULL);
}

enum MHD_Result srv_api_metrics(struct srv_request *r) {
    struct srv_metrics_gauges g = {0};
    srv_sched_gauges(&g);
    g.ready = atomic_load(&r->srv->ready) && !atomic_load(&r->srv->draining);
    g.draining = atomic_load(&r->srv->draining);
    g.http_in_flight = atomic_load(&r->srv->in_flight);
    const char *names[64];
    int n = 0;
    const struct srv_models *m = atomic_load(&r->srv->ready) ? r->srv->models : NULL;
    for (int i = 0; m && i < m->n && n < 64; i++) names[n++] = m->items[i].name;
    struct srv_buf out;
    srv_buf_init(&out);
    srv_metrics_render(&out, &g, names, n);
    srv_jobstore()->metrics(&out);
    size_t len = 0;
    char *text = srv_buf_steal(&out, &len);
    if (!text) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_INTERNAL, NULL, "out of memory");
        return srv_respond_error(r, &e);
    }
    return srv_respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
}

enum MHD_Result srv_api_models(struct srv_request *r) {
    return srv_respond_json(r, 200, srv_models_json(r->srv->models), NULL);
}

enum MHD_Result srv_api_openapi(struct srv_request *r) {
    size_t len = srv_openapi_len();
    char *copy = malloc(len ? len : 1);
    if (!copy) return MHD_NO;
    memcpy(copy, srv_openapi_text(), len);
    return srv_respond(r, 200, "application/json", copy, len, NULL);
}
