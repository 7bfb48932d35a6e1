/*
 * util.c - clocks, randomness, growable buffers and base64 for the daemon.
 *
 * Ids and unrequested seeds come from getrandom(2): ids must not be guessable (a job id is
 * the only key to its images), and seeds should not repeat across restarts.
 */
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t srv_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct timespec srv_deadline_after(uint64_t ns) {
    uint64_t t = srv_now_ns() + ns;
    return (struct timespec){(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
}

double srv_ms_between(uint64_t a, uint64_t b) {
    if (a == 0 || b == 0 || b < a) return 0.0;
    return (double)(b - a) / 1e6;
}

int64_t srv_unix_time(void) {
    return (int64_t)time(NULL);
}

void srv_random_fill(void *buf, size_t n) {
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got <= 0) {
            /* getrandom only fails before the pool is seeded or on EINTR; fall back to
             * a clock-seeded generator rather than refusing to serve. */
            uint64_t x = srv_now_ns() ^ (uint64_t)(uintptr_t)p;
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                p[i] = (uint8_t)x;
            }
            return;
        }
        p += got;
        n -= (size_t)got;
    }
}

uint64_t srv_random_u64(void) {
    uint64_t v;
    srv_random_fill(&v, sizeof v);
    return v;
}

void srv_random_id(const char *prefix, char *out, size_t out_size) {
    uint8_t raw[16];
    srv_random_fill(raw, sizeof raw);
    size_t k = (size_t)snprintf(out, out_size, "%s", prefix);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw && k + 2 < out_size; i++) {
        out[k++] = hex[raw[i] >> 4];
        out[k++] = hex[raw[i] & 15];
    }
    out[k < out_size ? k : out_size - 1] = '\0';
}

void srv_buf_init(struct srv_buf *b) {
    memset(b, 0, sizeof *b);
}

void srv_buf_clear(struct srv_buf *b) {
    free(b->data);
    srv_buf_init(b);
}

static int buf_reserve(struct srv_buf *b, size_t extra) {
    if (b->failed) return -1;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = 1;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

void srv_buf_append(struct srv_buf *b, const void *p, size_t n) {
    if (buf_reserve(b, n) != 0) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void srv_buf_puts(struct srv_buf *b, const char *s) {
    srv_buf_append(b, s, strlen(s));
}

void srv_buf_printf(struct srv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) {
        b->failed = 1;
        return;
    }
    if (buf_reserve(b, (size_t)need) != 0) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)need + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)need;
}

char *srv_buf_steal(struct srv_buf *b, size_t *len) {
    if (b->failed || buf_reserve(b, 0) != 0) {
        srv_buf_clear(b);
        return NULL;
    }
    char *p = b->data;
    if (len) *len = b->len;
    srv_buf_init(b);
    return p;
}

size_t srv_base64_len(size_t n) {
    return (n + 2) / 3 * 4;
}

void srv_base64_encode(const uint8_t *p, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i = 0, k = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[k++] = tab[v >> 18];
        out[k++] = tab[(v >> 12) & 63];
        out[k++] = tab[(v >> 6) & 63];
        out[k++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        out[k++] = tab[v >> 18];
        out[k++] = tab[(v >> 12) & 63];
        out[k++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
}
