/*
 * status.h - internal helpers for reporting errors through edm_error (include/edm.h).
 *
 * Every fallible engine function ends a failure path with
 *     return edm_error_set(err, EDM_EFORMAT, "tensor '%s': ...", name);
 * which fills err (when not NULL) and returns the status, so the message and the status
 * can never disagree.
 */
#ifndef EDM_STATUS_H
#define EDM_STATUS_H

#include "edm.h"

/* Sets err->status = st and err->message = the formatted text (truncated to fit), when err
 * is not NULL. Returns st. With st == EDM_OK the message is cleared (fmt may be NULL). */
enum edm_status edm_error_set(edm_error *err, enum edm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err (status EDM_OK, empty message); NULL allowed. */
void edm_error_clear(edm_error *err);

#endif /* EDM_STATUS_H */
