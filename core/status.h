/*
 * status.h - internal helpers for reporting errors through edm_error (include/edm.h).
 *
 * Every fallible engine function ends a failure path with
 *     return edm_error_set(err, EDM_EFORMAT, "tensor '%s': ...", name);
 * which fills err (when not NULL) and returns the status, so the message and the status
 * can never disagree. A failure caused by one parameter names it with edm_error_set_field,
 * which callers pass on without reading the message (the HTTP API's "param").
 */
#ifndef EDM_STATUS_H
#define EDM_STATUS_H

#include "edm.h"

/* Sets err->status = st and err->message = the formatted text (truncated to fit), when err
 * is not NULL, and clears err->field. Returns st. With st == EDM_OK the message is cleared
 * (fmt may be NULL). */
enum edm_status edm_error_set(edm_error *err, enum edm_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The same, naming the parameter at fault in err->field (NULL: none). */
enum edm_status edm_error_set_field(edm_error *err, enum edm_status st, const char *field,
                                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Clears err (status EDM_OK, empty message); NULL allowed. */
void edm_error_clear(edm_error *err);

#endif /* EDM_STATUS_H */
