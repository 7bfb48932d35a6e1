/*
 * main.c - edmd, the HTTP sampling daemon: configuration, start-up order, signals, drain.
 *
 * Start-up listens first and loads second, so /healthz answers and /readyz says 503 while
 * weights load. Signals are handled by posting a semaphore, and the wait on it doubles as
 * the housekeeping clock (disconnect checks, header and body deadlines of connections,
 * deadlines of queued jobs, expiry of finished jobs).
 *
 * SIGTERM (or SIGINT): /readyz and new work answer 503 at once; work in flight finishes for
 * up to --drain-timeout seconds (a second signal cuts the wait short); whatever is left ends
 * with a 503 "draining" error, so every accepted request still gets exactly one answer; the
 * answers are sent; then the process exits 0. Within the same timeout the drain also waits
 * for the results of finished async jobs that no client has read yet (their images live only
 * in this process), so a client polling its job still gets it from a replica that is stopping.
 * With a shared job store (Redis) the drain stops pulling jobs, finishes what it holds or
 * hands it back to the queue at the timeout, and waits only for the outcomes to be written
 * there: results live in Redis, not in this process.
 */
#include <errno.h>
#include <jansson.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "access_log.h"
#include "config.h"
#include "conn.h"
#include "http.h"
#include "jobstore.h"
#include "metrics.h"
#include "models.h"
#include "park.h"
#include "scheduler.h"
#include "util.h"

#define TICK_NS (50 * 1000000L) /* housekeeping period */

static int parse_devices(const char *s, int **out, int *n, char *err, size_t err_size) {
    *out = NULL;
    *n = 0;
    size_t cap = strlen(s) / 2 + 1;
    int *d = calloc(cap, sizeof *d);
    if (!d) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 1023 || (*end && *end != ',')) {
            snprintf(err, err_size, "devices: expected comma-separated ordinals, got '%s'", s);
            free(d);
            return -1;
        }
        d[(*n)++] = (int)v;
        p = *end ? end + 1 : end;
    }
    *out = d;
    return 0;
}

static int write_port_file(const char *path, unsigned port) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    fprintf(f, "%u\n", port);
    if (fclose(f) != 0) return -1;
    return rename(tmp, path); /* readers never see a half-written file */
}

/* SIGTERM/SIGINT arrive through a handler, not by blocking them and waiting with sigwait:
 * threads that libraries start before main (OpenBLAS's pool) do not block them, and a
 * process-directed signal that lands in such a thread would take its default action and
 * kill the process. The handler may run in any thread; it only posts a semaphore. */
static sem_t signal_sem;
static volatile sig_atomic_t last_signal;

static void on_signal(int sig) {
    last_signal = sig;
    sem_post(&signal_sem); /* async-signal-safe */
}

static int install_signal_handlers(void) {
    if (sem_init(&signal_sem, 0, 0)) return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) return -1;
    return 0;
}

/* Waits up to ns for SIGTERM/SIGINT; returns the signal or 0. Each signal is seen once. */
static int wait_signal(long ns) {
    const struct timespec until = srv_deadline_after((uint64_t)ns);
    int r;
    while ((r = sem_clockwait(&signal_sem, CLOCK_MONOTONIC, &until)) != 0 && errno == EINTR) {
    }
    return r == 0 ? (int)last_signal : 0;
}

static void housekeeping(struct srv_server *srv) {
    srv_park_check_disconnects(srv);
    srv_conn_enforce();
    srv_sched_housekeeping();
}

int main(int argc, char **argv) {
    struct srv_config cfg;
    struct srv_models models = {0};
    struct srv_server srv = {0};
    int *devices = NULL, n_devices = 0, rc = 1, sched_started = 0;
    char err[1024] = "";

    srv_config_init(&cfg);
    switch (srv_config_load(&cfg, argc, argv, err, sizeof err)) {
    case SRV_CONFIG_OK: break;
    case SRV_CONFIG_EXIT_OK: srv_config_clear(&cfg); return 0;
    case SRV_CONFIG_ERROR:
        fprintf(stderr, "edmd: %s\n", err);
        srv_config_clear(&cfg);
        return 2;
    }
    srv.limits = (struct srv_req_limits){(int)cfg.max_n, (int)cfg.max_steps, cfg.timeout_ms, cfg.max_timeout_ms};
    edm_backend_options bo;
    edm_backend_options_default(&bo);
    bo.threads = (int)cfg.compute_threads;
    bo.name = cfg.backend;
    {
        edm_backend_info bi;
        edm_error eerr;
        if (edm_backend_lookup(cfg.backend, &bi, &eerr) == EDM_EINVAL) {
            snprintf(err, sizeof err, "backend: %s", eerr.message);
            goto fail;
        }
    }
    if (edm_precision_parse(cfg.precision, &bo.precision) != EDM_OK) {
        snprintf(err, sizeof err, "precision: expected fp32, tf32, fp16 or bf16, got '%s'", cfg.precision);
        goto fail;
    }
    if (parse_devices(cfg.devices, &devices, &n_devices, err, sizeof err)) goto fail;
    if (cfg.models.n == 0) {
        snprintf(err, sizeof err, "no model given (--model PATH or --model NAME=PATH; see --help)");
        goto fail;
    }
    struct srv_jobstore_options jo = {cfg.job_store, cfg.job_store_password_file, cfg.job_lease_s, cfg.job_ttl_s,
                                      cfg.max_jobs, &models, &srv.limits};
    if (srv_jobstore_select(cfg.job_store, err, sizeof err) || srv_jobstore()->open(&jo, err, sizeof err))
        goto fail;
    if (srv_access_log_open(cfg.access_log)) {
        snprintf(err, sizeof err, "access-log %s: %s", cfg.access_log, strerror(errno));
        goto fail;
    }

    /* Before any thread of ours exists: jansson's hash seed, and the signal handlers. */
    json_object_seed(0);
    srv_metrics_init();
    signal(SIGPIPE, SIG_IGN);
    if (install_signal_handlers()) {
        snprintf(err, sizeof err, "signal handlers: %s", strerror(errno));
        goto fail;
    }

    srv.cfg = &cfg;
    if (srv_http_start(&srv, err, sizeof err)) goto fail;
    int v6 = strchr(cfg.host, ':') != NULL; /* an IPv6 address goes in brackets in a URL */
    fprintf(stderr, "edmd: listening on http://%s%s%s:%u (loading %d model%s)\n", v6 ? "[" : "", cfg.host,
            v6 ? "]" : "", srv.port, cfg.models.n, cfg.models.n == 1 ? "" : "s");
    if (srv.admin_daemon) {
        const char *ah = *cfg.admin_host ? cfg.admin_host : cfg.host;
        int a6 = strchr(ah, ':') != NULL;
        fprintf(stderr, "edmd: admin listener (/healthz, /readyz, /metrics) on http://%s%s%s:%u\n", a6 ? "[" : "", ah,
                a6 ? "]" : "", srv.admin_port);
    }
    if (cfg.port_file && *cfg.port_file && write_port_file(cfg.port_file, srv.port)) {
        snprintf(err, sizeof err, "port-file %s: %s", cfg.port_file, strerror(errno));
        goto fail;
    }
    if (srv.admin_daemon && *cfg.admin_port_file && write_port_file(cfg.admin_port_file, srv.admin_port)) {
        snprintf(err, sizeof err, "admin-port-file %s: %s", cfg.admin_port_file, strerror(errno));
        goto fail;
    }

    if (srv_models_load(&models, &cfg.models, err, sizeof err)) goto fail;
    struct srv_sched_options so = {
        .models = &models, .backend = bo, .devices = devices, .n_devices = n_devices,
        .max_batch = (int)cfg.max_batch, .max_queue = (int)cfg.max_queue, .encode_threads = (int)cfg.encode_threads,
        .png_level = (int)cfg.png_level, .max_jobs = (int)cfg.max_jobs, .job_ttl_s = cfg.job_ttl_s};
    if (srv_sched_start(&so, err, sizeof err)) goto fail;
    sched_started = 1;
    if (srv_jobstore()->start(err, sizeof err)) goto fail;
    srv.models = &models;
    atomic_store(&srv.ready, 1);
    for (int i = 0; i < models.n; i++)
        fprintf(stderr, "edmd: model %s%s: %s, %dx%dx%d, label_dim %d, %lld parameters\n", models.items[i].name,
                i == 0 ? " (default)" : "", models.items[i].path, models.items[i].cfg->img_channels,
                models.items[i].cfg->img_resolution, models.items[i].cfg->img_resolution,
                models.items[i].cfg->label_dim, (long long)models.items[i].parameters);
    fprintf(stderr, "edmd: ready: %s, max batch %ld, queue %ld, job store %s\n", srv_sched_describe(),
            cfg.max_batch, cfg.max_queue, srv_jobstore()->name);

    int sig;
    while ((sig = wait_signal(TICK_NS)) == 0) housekeeping(&srv);

    fprintf(stderr, "edmd: %s: draining (up to %g s)\n", strsignal(sig), cfg.drain_timeout_s);
    atomic_store(&srv.draining, 1);
    srv_sched_set_draining();
    srv_jobstore()->stop_pulling();
    uint64_t until = srv_now_ns() + (uint64_t)(cfg.drain_timeout_s * 1e9);
    long left, unread = 0, told = 0;
    for (;;) {
        left = srv_sched_wait_idle(0.0);
        unread = left ? 0 : srv_sched_unread_jobs();
        if ((!left && !unread) || srv_now_ns() >= until) break;
        if (unread && !told++)
            fprintf(stderr, "edmd: %ld finished job%s not read yet; serving %s until read or the drain timeout\n",
                    unread, unread == 1 ? "" : "s", unread == 1 ? "it" : "them");
        if (wait_signal(TICK_NS)) {
            fprintf(stderr, "edmd: second signal: not waiting any longer\n");
            break;
        }
        housekeeping(&srv);
    }
    if (unread > 0)
        fprintf(stderr, "edmd: %ld finished job%s never read; %s lost with this process\n", unread,
                unread == 1 ? "" : "s", unread == 1 ? "its images are" : "their images are");
    if (left > 0) {
        long back = srv_jobstore()->hand_back();
        if (left > back)
            fprintf(stderr, "edmd: %ld request%s unfinished at the drain timeout; answering 503\n", left - back,
                    left - back == 1 ? "" : "s");
        if (back)
            fprintf(stderr, "edmd: %ld job%s of the shared queue still running at the drain timeout; handing %s back\n",
                    back, back == 1 ? "" : "s", back == 1 ? "it" : "them");
        srv_sched_abort_all(SRV_E_DRAINING, "the server shut down before this work finished");
    }
    long unwritten = srv_jobstore()->flush(5.0);
    if (unwritten) fprintf(stderr, "edmd: %ld job outcome%s not written to the job store\n", unwritten,
                           unwritten == 1 ? "" : "s");
    /* Let the answers go out: no new connections, then wait for requests in progress. */
    srv_http_quiesce(&srv);
    until = srv_now_ns() + 5000000000ull;
    while (atomic_load(&srv.in_flight) > 0 && srv_now_ns() < until) {
        housekeeping(&srv);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rc = 0;
    fprintf(stderr, "edmd: stopped\n");

fail:
    if (rc && err[0]) fprintf(stderr, "edmd: %s\n", err);
    atomic_store(&srv.ready, 0);
    if (sched_started) srv_sched_abort_all(SRV_E_DRAINING, "the server is stopping");
    srv_http_stop(&srv);
    if (sched_started) srv_sched_stop();
    srv_jobstore()->close();
    srv_models_free(&models);
    srv_access_log_close();
    free(devices);
    srv_config_clear(&cfg);
    return rc;
}
