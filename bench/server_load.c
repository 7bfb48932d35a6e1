/*
 * server_load.c - closed-loop load generator for edmd (make bench-server).
 *
 *   server_load URL CLIENTS SECONDS BODY_JSON [WARMUP_SECONDS]
 *
 * CLIENTS threads each keep one keep-alive connection (libcurl easy handle) and send
 * POST /v1/images/generations with BODY_JSON back to back; the requests that complete in
 * the SECONDS after an unmeasured warm-up are counted. Prints one JSON line: requests,
 * images, errors, images_per_s, latency p50/p99/mean in ms, and from the responses' own
 * timings the mean queue and sampling time and the request-handling overhead per image:
 * client latency minus the server's queue and sampling time, i.e. HTTP, parsing, job
 * setup, PNG encoding, base64 and JSON, divided by n.
 *
 * images_per_s is the steady-state rate: each client's images between its first and last
 * completion in the window, over that time, summed over clients. Under heavy load the
 * completions come in waves (64 clients, one batch of 64: all finish together, every batch
 * time), and completions per second of a fixed window then depend on how many waves the
 * window happens to hold; the per-client cycle rate does not. window_images_per_s is the
 * plain count over the window, for comparison.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct body {
    char *data;
    size_t len, cap;
};

struct client {
    pthread_t thread;
    const char *url, *json;
    double start, warm_end, end;
    /* results (measured window only) */
    double *lat;
    size_t n_lat, cap_lat;
    long images, errors;
    double first_done, last_done; /* first and last completion in the window */
    long images_after_first;
    double sum_queue_ms, sum_sampling_ms, sum_overhead_ms;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
    struct body *b = arg;
    size_t k = size * n;
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 65536;
        while (cap < b->len + k + 1) cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) return 0;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, k);
    b->len += k;
    b->data[b->len] = '\0';
    return k;
}

/* The number after "key": in the JSON text, or -1. */
static double json_number(const char *s, const char *key) {
    const char *p = strstr(s, key);
    return p ? atof(p + strlen(key)) : -1.0;
}

static long count_images(const char *s) {
    long n = 0;
    for (const char *p = s; (p = strstr(p, "\"b64_json\"")) != NULL; p++) n++;
    return n;
}

static void *client_main(void *arg) {
    struct client *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    struct body b = {0};
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->json);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    for (;;) {
        double t0 = now_s();
        if (t0 >= c->end) break;
        b.len = 0;
        CURLcode rc = curl_easy_perform(h);
        double t1 = now_s();
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        /* a request counts when it completes inside the measured window [warm_end, end]:
         * closed-loop throughput is completions per second of window */
        if (t1 < c->warm_end || t1 > c->end) continue;
        if (rc != CURLE_OK || status != 200 || !b.data) {
            c->errors++;
            continue;
        }
        long imgs = count_images(b.data);
        double q = json_number(b.data, "\"queue_ms\":"), s = json_number(b.data, "\"sampling_ms\":");
        if (c->n_lat == c->cap_lat) {
            c->cap_lat = c->cap_lat ? c->cap_lat * 2 : 1024;
            c->lat = realloc(c->lat, c->cap_lat * sizeof *c->lat);
        }
        double ms = (t1 - t0) * 1e3;
        c->lat[c->n_lat++] = ms;
        c->images += imgs;
        if (c->n_lat == 1) c->first_done = t1;
        else c->images_after_first += imgs;
        c->last_done = t1;
        c->sum_queue_ms += q;
        c->sum_sampling_ms += s;
        c->sum_overhead_ms += (ms - q - s) / (double)(imgs > 0 ? imgs : 1);
    }
    free(b.data);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: server_load URL CLIENTS SECONDS BODY_JSON [WARMUP_SECONDS]\n");
        return 2;
    }
    const char *url = argv[1], *json = argv[4];
    int n = atoi(argv[2]);
    double secs = atof(argv[3]), warm = argc > 5 ? atof(argv[5]) : 1.0;
    if (n < 1 || secs <= 0) return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct client *cs = calloc((size_t)n, sizeof *cs);
    double start = now_s();
    for (int i = 0; i < n; i++) {
        cs[i] = (struct client){.url = url, .json = json, .start = start, .warm_end = start + warm,
                                .end = start + warm + secs};
        pthread_create(&cs[i].thread, NULL, client_main, &cs[i]);
    }
    size_t total = 0;
    long images = 0, errors = 0;
    double q = 0, s = 0, o = 0, rate = 0;
    int cycled = 0; /* clients with two or more completions in the window */
    for (int i = 0; i < n; i++) {
        pthread_join(cs[i].thread, NULL);
        if (cs[i].n_lat >= 2 && cs[i].last_done > cs[i].first_done) {
            rate += (double)cs[i].images_after_first / (cs[i].last_done - cs[i].first_done);
            cycled++;
        }
        total += cs[i].n_lat;
        images += cs[i].images;
        errors += cs[i].errors;
        q += cs[i].sum_queue_ms;
        s += cs[i].sum_sampling_ms;
        o += cs[i].sum_overhead_ms;
    }
    double *all = malloc((total ? total : 1) * sizeof *all), mean = 0;
    size_t k = 0;
    for (int i = 0; i < n; i++)
        for (size_t j = 0; j < cs[i].n_lat; j++) mean += all[k++] = cs[i].lat[j];
    qsort(all, total, sizeof *all, by_value);
    double p50 = total ? all[(total - 1) / 2] : 0, p99 = total ? all[(size_t)((double)(total - 1) * 0.99)] : 0;
    double d = total ? (double)total : 1, window_rate = (double)images / secs;
    /* too few completions per client for a cycle rate: the window count is all there is */
    if (cycled < n) rate = window_rate;
    printf("{\"clients\": %d, \"seconds\": %.3f, \"requests\": %zu, \"images\": %ld, \"errors\": %ld, "
           "\"images_per_s\": %.4f, \"rate_from\": \"%s\", \"window_images_per_s\": %.4f, \"p50_ms\": %.2f, \"p99_ms\": %.2f, \"mean_ms\": %.2f, "
           "\"mean_queue_ms\": %.2f, \"mean_sampling_ms\": %.2f, \"overhead_ms_per_image\": %.3f}\n",
           n, secs, total, images, errors, rate, cycled < n ? "window" : "cycles", window_rate, p50, p99, mean / d, q / d, s / d, o / d);
    for (int i = 0; i < n; i++) free(cs[i].lat);
    free(all);
    free(cs);
    curl_global_cleanup();
    return errors ? 1 : 0;
}
