/*
 * api_status.c - GET /healthz, /readyz, /metrics, /v1/models, /v1/models/{id} and
 * /openapi.json.
 *
 * /healthz is liveness: 200 unless a compute device failed (then the process should be
 * restarted). /readyz is readiness: 503 while loading models and after SIGTERM, so a load
 * balancer stops sending work before the drain begins, and while a shared job store
 * (Redis) has not been reached since start, saying why. A later outage of the store keeps
 * the replica ready (200, the body naming it): every replica loses a shared store at once,
 * and taking them all out of the balancer would stop the synchronous requests too, which
 * need no store; ready-needs-job-store = 1 makes every outage a 503. Neither needs an API
 * key, nor does /metrics (scrapers rarely carry secrets). Their 503s report a state, so they
 * are not counted as rejections. All three are also served by the admin listener
 * (--admin-port).
 */
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "linger.h"
#include "jobstore.h"
#include "metrics.h"
#include "openapi_doc.h"
#include "public_url.h"
#include "respond.h"
#include "routes.h"
#include "scheduler.h"

enum MHD_Result srv_api_healthz(struct srv_request *r) {
    if (srv_sched_device_failed()) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_UNAVAILABLE, NULL, "a compute device failed; restart the server");
        return srv_respond_report(r, &e);
    }
    return srv_respond_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

enum MHD_Result srv_api_readyz(struct srv_request *r) {
    struct srv_error e;
    if (atomic_load(&r->srv->draining)) {
        srv_error_set(&e, SRV_E_DRAINING, NULL, "draining: finishing the work in flight, then exiting");
        return srv_respond_report(r, &e);
    }
    if (!atomic_load(&r->srv->ready)) {
        srv_error_set(&e, SRV_E_NOT_READY, NULL, "loading models");
        return srv_respond_report(r, &e);
    }
    if (srv_sched_device_failed()) {
        srv_error_set(&e, SRV_E_UNAVAILABLE, NULL, "a compute device failed");
        return srv_respond_report(r, &e);
    }
    char why[256];
    if (!srv_jobstore()->ready(why, sizeof why)) {
        const int reached = srv_jobstore()->reached();
        if (r->srv->cfg->ready_needs_job_store || !reached) {
            srv_error_set(&e, SRV_E_STORE_UNAVAILABLE, NULL, "the job store is unavailable%s: %s",
                          reached ? "" : " (not reached since start)", why);
            return srv_respond_error(r, &e);
        }
        char detail[300];
        snprintf(detail, sizeof detail, "unavailable: %s", why);
        return srv_respond_json(r, 200, json_pack("{s:s, s:s}", "status", "ready", "job_store", detail), NULL);
    }
    return srv_respond_json(r, 200, json_pack("{s:s}", "status", "ready"), NULL);
}

enum MHD_Result srv_api_metrics(struct srv_request *r) {
    struct srv_metrics_gauges g = {0};
    srv_sched_gauges(&g);
    g.ready = atomic_load(&r->srv->ready) && !atomic_load(&r->srv->draining);
    g.draining = atomic_load(&r->srv->draining);
    g.http_in_flight = atomic_load(&r->srv->in_flight);
    srv_conn_counts(&g.connections[0], &g.connections[1]);
    g.lingering = srv_linger_count();
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
    return srv_respond_json(r, 200, srv_models_json(r->srv->models, &r->srv->limits), NULL);
}

enum MHD_Result srv_api_model(struct srv_request *r) {
    json_t *m = srv_model_json(r->srv->models, r->model_id, &r->srv->limits);
    if (m) return srv_respond_json(r, 200, m, NULL);
    struct srv_error e;
    srv_error_set(&e, SRV_E_MODEL_NOT_FOUND, "model",
                  "model '%.128s' is not served here (GET /v1/models)", r->model_id);
    return srv_respond_error(r, &e);
}

/* server/openapi.json, its servers entry the address this client reaches edmd at (the file
 * says "/": the document's own origin). */
enum MHD_Result srv_api_openapi(struct srv_request *r) {
    json_t *doc = json_loadb(srv_openapi_text(), srv_openapi_len(), 0, NULL);
    char base[512];
    srv_public_url(r, base, sizeof base);
    if (doc) json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", base));
    char *text = doc ? json_dumps(doc,
                                  JSON_PRESERVE_ORDER | JSON_INDENT(1) | JSON_REAL_PRECISION(17))
                     : NULL;
    json_decref(doc);
    if (!text) {
        struct srv_error e;
        srv_error_set(&e, SRV_E_INTERNAL, NULL, "out of memory");
        return srv_respond_error(r, &e);
    }
    return srv_respond(r, 200, "application/json", text, strlen(text), NULL);
}
