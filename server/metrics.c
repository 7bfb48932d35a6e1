/*
 * metrics.c - counters and histograms, rendered in the Prometheus text format 0.0.4.
 *
 * Histogram buckets are cumulative at render time (stored per bucket, summed when
 * written), so an observation is one increment. The batch-size histogram is what shows
 * continuous batching at work: with concurrent requests its mass moves above 1.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define MAX_BUCKETS 20

struct histogram {
    const char *name, *help;
    int n;
    double bounds[MAX_BUCKETS];
    unsigned long long counts[MAX_BUCKETS + 1]; /* last: +Inf */
    double sum;
    unsigned long long count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long requests[2][SRV_OUTCOME_COUNT], images[SRV_OUTCOME_COUNT];
static unsigned long long evaluations, batches, rejections[SRV_ERR_COUNT];
static double busy_seconds;
static unsigned long long http_by_class[6]; /* 1xx..5xx, [0] other */
static unsigned long long http_by_status[600];
static unsigned long long closed[SRV_CLOSE_COUNT];
static const char *close_names[SRV_CLOSE_COUNT] = {"header_timeout", "body_timeout"};

static struct histogram h_batch = {
    "edm_batch_size", "Images per batched network evaluation.", 11,
    {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}, {0}, 0, 0};
static struct histogram h_wait = {
    "edm_queue_wait_seconds", "Time a request waited in the queue before its first evaluation.", 16,
    {.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}, {0}, 0, 0};
static struct histogram h_duration = {
    "edm_request_duration_seconds", "Time from a generation request's arrival to its terminal state.",
    16, {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}, {0}, 0, 0};

static const char *outcome_names[SRV_OUTCOME_COUNT] = {"completed", "failed", "cancelled",
                                                       "deadline_exceeded"};

const char *srv_outcome_name(enum srv_outcome o) {
    return (int)o >= 0 && o < SRV_OUTCOME_COUNT ? outcome_names[o] : "failed";
}

static void observe(struct histogram *h, double v) {
    int i = 0;
    while (i < h->n && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void srv_metrics_init(void) {
    pthread_mutex_lock(&lock);
    memset(requests, 0, sizeof requests);
    memset(images, 0, sizeof images);
    memset(rejections, 0, sizeof rejections);
    memset(http_by_class, 0, sizeof http_by_class);
    memset(http_by_status, 0, sizeof http_by_status);
    memset(closed, 0, sizeof closed);
    evaluations = batches = 0;
    busy_seconds = 0;
    struct histogram *hs[] = {&h_batch, &h_wait, &h_duration};
    for (int k = 0; k < 3; k++) {
        memset(hs[k]->counts, 0, sizeof hs[k]->counts);
        hs[k]->sum = 0;
        hs[k]->count = 0;
    }
    pthread_mutex_unlock(&lock);
}

void srv_metrics_request_done(int async, enum srv_outcome outcome, int n_images, double duration_s) {
    if ((int)outcome < 0 || outcome >= SRV_OUTCOME_COUNT) outcome = SRV_OUTCOME_FAILED;
    pthread_mutex_lock(&lock);
    requests[async ? 1 : 0][outcome]++;
    images[outcome] += (unsigned long long)(n_images > 0 ? n_images : 0);
    observe(&h_duration, duration_s);
    pthread_mutex_unlock(&lock);
}

void srv_metrics_queue_wait(double seconds) {
    pthread_mutex_lock(&lock);
    observe(&h_wait, seconds);
    pthread_mutex_unlock(&lock);
}

void srv_metrics_batch(int size, double seconds) {
    pthread_mutex_lock(&lock);
    evaluations += (unsigned long long)size;
    batches++;
    busy_seconds += seconds;
    observe(&h_batch, size);
    pthread_mutex_unlock(&lock);
}

void srv_metrics_rejection(enum srv_err code) {
    if ((int)code <= 0 || code >= SRV_ERR_COUNT) return;
    pthread_mutex_lock(&lock);
    rejections[code]++;
    pthread_mutex_unlock(&lock);
}

void srv_metrics_http_response(int status) {
    pthread_mutex_lock(&lock);
    if (status >= 100 && status < 600) {
        http_by_class[status / 100]++;
        http_by_status[status]++;
    } else {
        http_by_class[0]++;
    }
    pthread_mutex_unlock(&lock);
}

void srv_metrics_connection_closed(enum srv_close_reason why) {
    if ((int)why < 0 || why >= SRV_CLOSE_COUNT) return;
    pthread_mutex_lock(&lock);
    closed[why]++;
    pthread_mutex_unlock(&lock);
}

static void render_histogram(struct srv_buf *out, const struct histogram *h) {
    srv_buf_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
    unsigned long long cum = 0;
    for (int i = 0; i < h->n; i++) {
        cum += h->counts[i];
        srv_buf_printf(out, "%s_bucket{le=\"%g\"} %llu\n", h->name, h->bounds[i], cum);
    }
    cum += h->counts[h->n];
    srv_buf_printf(out, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", h->name, cum,
                   h->name, h->sum, h->name, h->count);
}

static void gauge(struct srv_buf *out, const char *name, const char *help, double v) {
    srv_buf_printf(out, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void label_escape(struct srv_buf *out, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"') srv_buf_append(out, "\\", 1);
        if (*s == '\n') {
            srv_buf_puts(out, "\\n");
            continue;
        }
        srv_buf_append(out, s, 1);
    }
}

void srv_metrics_render(struct srv_buf *out, const struct srv_metrics_gauges *g,
                        const char *const *model_names, int n_models) {
    gauge(out, "edm_queue_depth", "Requests waiting for a worker.", (double)g->queue_depth);
    gauge(out, "edm_queue_capacity", "Most requests that may wait (max-queue).", g->max_queue);
    gauge(out, "edm_images_in_flight", "Images being sampled by a worker.", (double)g->images_in_flight);
    gauge(out, "edm_max_batch", "Largest batch of one network evaluation.", g->max_batch);
    gauge(out, "edm_jobs_stored", "Asynchronous jobs held (any state).", (double)g->jobs_stored);
    gauge(out, "edm_http_requests_in_flight", "HTTP requests being handled.", (double)g->http_in_flight);
    srv_buf_printf(out, "# HELP edm_connections Open connections by listener.\n# TYPE edm_connections gauge\n"
                        "edm_connections{listener=\"api\"} %ld\nedm_connections{listener=\"admin\"} %ld\n",
                   g->connections[0], g->connections[1]);
    gauge(out, "edm_lingering_connections", "Sockets reading the rest of a body answered before it was read.",
          (double)g->lingering);
    gauge(out, "edm_ready", "1 when serving, 0 while loading or draining.", g->ready);
    gauge(out, "edm_draining", "1 after SIGTERM.", g->draining);
    gauge(out, "edm_device_failed", "1 when a compute device failed.", g->device_failed);
    srv_buf_puts(out, "# HELP edm_model_info A model being served.\n# TYPE edm_model_info gauge\n");
    for (int i = 0; i < n_models; i++) {
        srv_buf_puts(out, "edm_model_info{model=\"");
        label_escape(out, model_names[i]);
        srv_buf_printf(out, "\",default=\"%s\"} 1\n", i == 0 ? "true" : "false");
    }

    pthread_mutex_lock(&lock);
    srv_buf_puts(out, "# HELP edm_requests_total Generation requests by mode and terminal outcome.\n"
                      "# TYPE edm_requests_total counter\n");
    for (int m = 0; m < 2; m++)
        for (int o = 0; o < SRV_OUTCOME_COUNT; o++)
            srv_buf_printf(out, "edm_requests_total{mode=\"%s\",outcome=\"%s\"} %llu\n",
                           m ? "async" : "sync", outcome_names[o], requests[m][o]);
    srv_buf_puts(out, "# HELP edm_images_total Images by the terminal outcome of their request.\n"
                      "# TYPE edm_images_total counter\n");
    for (int o = 0; o < SRV_OUTCOME_COUNT; o++)
        srv_buf_printf(out, "edm_images_total{outcome=\"%s\"} %llu\n", outcome_names[o], images[o]);
    srv_buf_printf(out,
                   "# HELP edm_denoiser_evaluations_total Network evaluations (one image each).\n"
                   "# TYPE edm_denoiser_evaluations_total counter\n"
                   "edm_denoiser_evaluations_total %llu\n"
                   "# HELP edm_denoiser_batches_total Batched network calls.\n"
                   "# TYPE edm_denoiser_batches_total counter\n"
                   "edm_denoiser_batches_total %llu\n"
                   "# HELP edm_worker_busy_seconds_total Time workers spent in network calls.\n"
                   "# TYPE edm_worker_busy_seconds_total counter\n"
                   "edm_worker_busy_seconds_total %.9g\n",
                   evaluations, batches, busy_seconds);
    srv_buf_puts(out, "# HELP edm_rejections_total Error answers other than a generation's own outcome, by reason.\n"
                      "# TYPE edm_rejections_total counter\n");
    for (int c = 1; c < SRV_ERR_COUNT; c++) {
        /* job outcomes (cancelled, deadline, engine, diverged) are counted as requests, not here */
        if (c == SRV_E_CANCELLED || c == SRV_E_DEADLINE || c == SRV_E_ENGINE || c == SRV_E_DIVERGED)
            continue;
        srv_buf_printf(out, "edm_rejections_total{reason=\"%s\"} %llu\n",
                       srv_error_code_name((enum srv_err)c), rejections[c]);
    }
    srv_buf_puts(out, "# HELP edm_http_responses_total HTTP responses by status code.\n"
                      "# TYPE edm_http_responses_total counter\n");
    for (int s = 100; s < 600; s++)
        if (http_by_status[s]) srv_buf_printf(out, "edm_http_responses_total{code=\"%d\"} %llu\n", s, http_by_status[s]);
    srv_buf_puts(out, "# HELP edm_connections_closed_total Connections edmd closed on its own, by reason.\n"
                      "# TYPE edm_connections_closed_total counter\n");
    for (int k = 0; k < SRV_CLOSE_COUNT; k++)
        srv_buf_printf(out, "edm_connections_closed_total{reason=\"%s\"} %llu\n", close_names[k], closed[k]);
    render_histogram(out, &h_batch);
    render_histogram(out, &h_wait);
    render_histogram(out, &h_duration);
    pthread_mutex_unlock(&lock);
}
