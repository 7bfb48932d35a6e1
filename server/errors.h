/*
 * errors.h - the one error shape of the API, {"error": {"code", "message", "param", "type"}}, and
 * the one table that maps each error to its HTTP status and machine-readable code.
 *
 * Everything that the outside world can cause ends up as a struct srv_error value; the HTTP
 * edge (respond.c) turns it into a response with srv_error_json and counts it in metrics.
 */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H

#include <stddef.h>

enum srv_err {
    SRV_OK = 0,
    SRV_E_INVALID_JSON,     /* 400 the body is not JSON, or not an object */
    SRV_E_INVALID_PARAM,    /* 400 a field has the wrong type, range, or is unknown */
    SRV_E_BAD_REQUEST,      /* 400 malformed HTTP (conflicting Content-Length or framing, ...) */
    SRV_E_UNAUTHORIZED,     /* 401 missing or wrong API key */
    SRV_E_MODEL_NOT_FOUND,  /* 404 */
    SRV_E_JOB_NOT_FOUND,    /* 404 unknown or expired job */
    SRV_E_NOT_FOUND,        /* 404 no such route or image */
    SRV_E_METHOD,           /* 405 */
    SRV_E_NOT_ACCEPTABLE,   /* 406 Accept cannot be satisfied */
    SRV_E_JOB_FINISHED,     /* 409 cancel of a job that already finished */
    SRV_E_JOB_NOT_DONE,     /* 409 images of a job that has not completed */
    SRV_E_TOO_LARGE,        /* 413 */
    SRV_E_MEDIA_TYPE,       /* 415 */
    SRV_E_DIVERGED,         /* 422 an image's sampling stopped being finite (settings, model) */
    SRV_E_IDEM_REUSED,      /* 422 an Idempotency-Key sent again with another request body */
    SRV_E_QUEUE_FULL,       /* 429 */
    SRV_E_CANCELLED,        /* 499 (nginx's "client closed request"): the job was cancelled */
    SRV_E_INTERNAL,         /* 500 */
    SRV_E_ENGINE,           /* 500 the engine failed while sampling */
    SRV_E_NOT_IMPLEMENTED,  /* 501 a transfer coding edmd does not implement (gzip, ...) */
    SRV_E_NOT_READY,        /* 503 still loading models */
    SRV_E_DRAINING,         /* 503 shutting down */
    SRV_E_UNAVAILABLE,      /* 503 the compute device failed */
    SRV_E_STORE_UNAVAILABLE, /* 503 the shared job store (Redis) cannot be reached */
    SRV_E_DEADLINE,         /* 504 */
    SRV_ERR_COUNT
};

struct srv_error {
    enum srv_err code;
    char param[64];    /* the offending field, or "" */
    char message[320]; /* one sentence for people */
};

/* Fills err (NULL allowed) and returns code. param may be NULL. */
enum srv_err srv_error_set(struct srv_error *err, enum srv_err code, const char *param,
                           const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void srv_error_clear(struct srv_error *err);

int srv_error_http_status(enum srv_err code);
/* The machine-readable code ("invalid_parameter", "queue_full", ...). Never NULL. */
const char *srv_error_code_name(enum srv_err code);
/* OpenAI's error type, from the status: "invalid_request_error" (4xx), "authentication_error"
 * (401), "rate_limit_error" (429) or "server_error" (5xx). Never NULL. */
const char *srv_error_type(enum srv_err code);
/* The code whose name is `name` ("queue_full"), or SRV_E_INTERNAL when none is. */
enum srv_err srv_error_code_parse(const char *name);
/* Whether the answer should carry Retry-After (429, 503). */
int srv_error_retryable(enum srv_err code);

/* The response body {"error": {...}} as a new NUL-terminated string (free with free()),
 * or NULL when out of memory. */
char *srv_error_json(const struct srv_error *err, size_t *len);

#endif /* SRV_ERRORS_H */
