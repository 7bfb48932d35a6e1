/*
 * util.h - small helpers shared by the daemon: clocks, randomness, a growable byte buffer
 * and base64.
 *
 * Ownership: a srv_buf owns its bytes until srv_buf_steal hands them to the caller (free()).
 * A buffer remembers the first allocation failure ("sticky"), so callers append freely and
 * check once.
 */
#ifndef SRV_UTIL_H
#define SRV_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Monotonic clock in nanoseconds (for durations and deadlines). */
uint64_t srv_now_ns(void);
/* The CLOCK_MONOTONIC instant ns from now, for timed waits on that clock. */
struct timespec srv_deadline_after(uint64_t ns);
/* Milliseconds from a to b (b >= a); 0 when either is 0 (an event that did not happen). */
double srv_ms_between(uint64_t a, uint64_t b);
/* Wall clock in seconds since the epoch (for "created" fields and logs). */
int64_t srv_unix_time(void);

/* Cryptographic randomness (getrandom); used for ids and for seeds nobody asked for. */
void srv_random_fill(void *buf, size_t n);
uint64_t srv_random_u64(void);
/* A new id "<prefix><32 hex digits>" written into out (size >= strlen(prefix) + 33). */
void srv_random_id(const char *prefix, char *out, size_t out_size);

struct srv_buf {
    char *data;
    size_t len, cap;
    int failed; /* an allocation failed; data holds what fitted before */
};

void srv_buf_init(struct srv_buf *b);
void srv_buf_clear(struct srv_buf *b);
void srv_buf_append(struct srv_buf *b, const void *p, size_t n);
void srv_buf_puts(struct srv_buf *b, const char *s);
void srv_buf_printf(struct srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the NUL-terminated bytes to the caller (free with free()) and resets b.
 * Returns NULL when an allocation failed at any point. */
char *srv_buf_steal(struct srv_buf *b, size_t *len);

/* Length of the base64 text for n bytes, without the NUL. */
size_t srv_base64_len(size_t n);
/* Writes the base64 text of p[0..n) and a NUL into out (srv_base64_len(n) + 1 bytes). */
void srv_base64_encode(const uint8_t *p, size_t n, char *out);

#endif /* SRV_UTIL_H */
