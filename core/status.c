/*
 * status.c - status names, the edm_error filler used by every engine module, and the
 * failure end of EDM_ASSERT (edm.h).
 *
 * Design: errors are values (enum edm_status) plus one sentence in a caller-owned buffer;
 * no global state, no allocation, so this is safe from any thread and on any failure path
 * (including out-of-memory). Messages longer than the buffer are truncated, never overflow.
 * Spec: DESIGN.md (error conventions), include/edm.h "Errors".
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *edm_status_name(enum edm_status status) {
    switch (status) {
    case EDM_OK: return "ok";
    case EDM_EINVAL: return "invalid argument";
    case EDM_EIO: return "input/output error";
    case EDM_EFORMAT: return "malformed file";
    case EDM_ENOMEM: return "out of memory";
    case EDM_EDEVICE: return "device error";
    case EDM_EUNSUPPORTED: return "unsupported";
    }
    /* Not an assert: the value may come from a corrupted caller and we must return a string. */
    return "unknown status";
}

void edm_error_clear(edm_error *err) {
    if (!err) return;
    err->status = EDM_OK;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

static enum edm_status error_vset(edm_error *err, enum edm_status st, const char *field,
                                  const char *fmt, va_list ap) {
    if (!err) return st;
    err->status = st;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    if (!fmt) {
        /* No text given: the status name is better than an empty or stale message. */
        snprintf(err->message, sizeof err->message, "%s", st == EDM_OK ? "" : edm_status_name(st));
        return st;
    }
    int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
    if (n < 0) snprintf(err->message, sizeof err->message, "%s", edm_status_name(st));
    return st;
}

enum edm_status edm_error_set(edm_error *err, enum edm_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, st, NULL, fmt, ap);
    va_end(ap);
    return st;
}

enum edm_status edm_error_set_field(edm_error *err, enum edm_status st, const char *field,
                                    const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    error_vset(err, st, field, fmt, ap);
    va_end(ap);
    return st;
}

void edm_assert_fail(const char *file, int line, const char *func, const char *cond) {
    fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", file, line, func, cond);
    fflush(stderr);
    abort();
}
