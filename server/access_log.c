/*
 * access_log.c - JSON access log lines.
 *
 * Each line is built in memory and written with one write(2) on an O_APPEND descriptor, so
 * lines from concurrent requests never interleave. Strings from the request (the path) go
 * through jansson, which escapes them; bytes that are not UTF-8 become '?'.
 */
#include "access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static int log_owned;

int srv_access_log_open(const char *where) {
    srv_access_log_close();
    if (!where || strcmp(where, "off") == 0) return 0;
    if (strcmp(where, "-") == 0 || !*where) {
        log_fd = STDERR_FILENO;
        return 0;
    }
    log_fd = open(where, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return -1;
    log_owned = 1;
    return 0;
}

void srv_access_log_close(void) {
    if (log_owned && log_fd >= 0) close(log_fd);
    log_fd = -1;
    log_owned = 0;
}

static json_t *str_or_null(const char *s) {
    if (!s || !*s) return json_null();
    char clean[512];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof clean; i++) {
        unsigned char c = (unsigned char)s[i];
        clean[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    clean[i] = '\0';
    return json_string(clean);
}

void srv_access_log_write(const struct srv_access_entry *e) {
    if (log_fd < 0) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%03dZ", (int)(tv.tv_usec / 1000));
    json_t *o = json_pack("{s:s, s:o, s:o, s:o, s:i, s:I, s:f, s:o, s:o, s:o, s:o}", "ts", ts,
                          "remote", str_or_null(e->remote), "method", str_or_null(e->method),
                          "path", str_or_null(e->path), "status", e->status, "bytes",
                          (json_int_t)e->bytes, "duration_ms", e->duration_ms, "request_id",
                          str_or_null(e->request_id), "job_id", str_or_null(e->job_id), "error",
                          str_or_null(e->error), "termination", str_or_null(e->termination));
    if (!o) return;
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    json_decref(o);
    if (!line) return;
    size_t len = strlen(line);
    char *full = malloc(len + 1);
    if (full) {
        memcpy(full, line, len);
        full[len] = '\n';
        ssize_t w = write(log_fd, full, len + 1);
        (void)w; /* a full disk must not take the server down */
        free(full);
    }
    free(line);
}
