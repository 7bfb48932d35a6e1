/*
 * metrics.h - Prometheus counters, gauges and histograms (every name prefixed edm_).
 *
 * Counters and histograms live here behind one mutex (updates are a few per request or per
 * tick, far below contention); gauges that belong to other modules (queue depth, readiness)
 * are passed in at render time, so there is one truth for each figure.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include "errors.h"
#include "util.h"

enum srv_outcome {
    SRV_OUTCOME_COMPLETED,
    SRV_OUTCOME_FAILED,
    SRV_OUTCOME_CANCELLED,
    SRV_OUTCOME_DEADLINE,
    SRV_OUTCOME_COUNT
};
const char *srv_outcome_name(enum srv_outcome o);

struct srv_metrics_gauges {
    long queue_depth;      /* requests waiting for a worker */
    long images_in_flight; /* images admitted to a worker, not yet finished */
    long jobs_stored;      /* asynchronous jobs in the table */
    long http_in_flight;   /* HTTP requests being handled */
    long connections[2];   /* open connections: API listener, admin listener */
    long lingering;        /* sockets in a lingering close (linger.h) */
    int ready, draining, device_failed;
    int max_batch, max_queue;
};

void srv_metrics_init(void);
/* A request (sync or async job) reached its one terminal state. */
void srv_metrics_request_done(int async, enum srv_outcome outcome, int n_images, double duration_s);
void srv_metrics_queue_wait(double seconds);
/* One batched network evaluation of `size` images that took `seconds`. */
void srv_metrics_batch(int size, double seconds);
/* A request answered with an error before any work was accepted for it. */
void srv_metrics_rejection(enum srv_err code);
void srv_metrics_http_response(int status);
/* Why edmd closed a connection on its own (conn.c). */
enum srv_close_reason { SRV_CLOSE_HEADER_TIMEOUT, SRV_CLOSE_BODY_TIMEOUT, SRV_CLOSE_COUNT };
void srv_metrics_connection_closed(enum srv_close_reason why);
/* Appends the exposition text to out. models: "name" labels for edm_model_info. */
void srv_metrics_render(struct srv_buf *out, const struct srv_metrics_gauges *g,
                        const char *const *model_names, int n_models);

#endif /* SRV_METRICS_H */
