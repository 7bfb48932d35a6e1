/*
 * errors.c - the error table: status, code name, and the JSON body.
 *
 * One table, so a status and its code can never disagree between endpoints (the design
 * notes warn against several error shapes). "param" is null when no field is to blame;
 * "type" is OpenAI's class of the error, which its SDKs read.
 */
#include "errors.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int status;
    const char *name;
} error_table[SRV_ERR_COUNT] = {
    [SRV_OK] = {200, "ok"},
    [SRV_E_INVALID_JSON] = {400, "invalid_json"},
    [SRV_E_INVALID_PARAM] = {400, "invalid_parameter"},
    [SRV_E_BAD_REQUEST] = {400, "bad_request"},
    [SRV_E_UNAUTHORIZED] = {401, "unauthorized"},
    [SRV_E_MODEL_NOT_FOUND] = {404, "model_not_found"},
    [SRV_E_JOB_NOT_FOUND] = {404, "job_not_found"},
    [SRV_E_NOT_FOUND] = {404, "not_found"},
    [SRV_E_METHOD] = {405, "method_not_allowed"},
    [SRV_E_NOT_ACCEPTABLE] = {406, "not_acceptable"},
    [SRV_E_JOB_FINISHED] = {409, "job_finished"},
    [SRV_E_JOB_NOT_DONE] = {409, "job_not_completed"},
    [SRV_E_TOO_LARGE] = {413, "payload_too_large"},
    [SRV_E_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [SRV_E_DIVERGED] = {422, "sampling_diverged"},
    [SRV_E_IDEM_REUSED] = {422, "idempotency_key_reused"},
    [SRV_E_QUEUE_FULL] = {429, "queue_full"},
    [SRV_E_CANCELLED] = {499, "cancelled"},
    [SRV_E_INTERNAL] = {500, "internal_error"},
    [SRV_E_ENGINE] = {500, "engine_error"},
    [SRV_E_NOT_IMPLEMENTED] = {501, "not_implemented"},
    [SRV_E_NOT_READY] = {503, "not_ready"},
    [SRV_E_DRAINING] = {503, "draining"},
    [SRV_E_UNAVAILABLE] = {503, "device_failed"},
    [SRV_E_STORE_UNAVAILABLE] = {503, "job_store_unavailable"},
    [SRV_E_DEADLINE] = {504, "deadline_exceeded"},
};

enum srv_err srv_error_set(struct srv_error *err, enum srv_err code, const char *param,
                           const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void srv_error_clear(struct srv_error *err) {
    if (!err) return;
    err->code = SRV_OK;
    err->param[0] = '\0';
    err->message[0] = '\0';
}

int srv_error_http_status(enum srv_err code) {
    if ((int)code < 0 || code >= SRV_ERR_COUNT) return 500;
    return error_table[code].status;
}

const char *srv_error_code_name(enum srv_err code) {
    if ((int)code < 0 || code >= SRV_ERR_COUNT) return "internal_error";
    return error_table[code].name;
}

const char *srv_error_type(enum srv_err code) {
    int st = srv_error_http_status(code);
    if (st == 401) return "authentication_error";
    if (st == 429) return "rate_limit_error";
    return st >= 500 ? "server_error" : "invalid_request_error";
}

enum srv_err srv_error_code_parse(const char *name) {
    for (int c = 1; c < SRV_ERR_COUNT; c++)
        if (error_table[c].name && strcmp(error_table[c].name, name) == 0) return (enum srv_err)c;
    return SRV_E_INTERNAL;
}

int srv_error_retryable(enum srv_err code) {
    int st = srv_error_http_status(code);
    return st == 429 || st == 503;
}

/* Messages may quote request bytes (a path, a field name); JSON strings must be UTF-8, so
 * anything outside printable ASCII becomes '?'. */
static void ascii_copy(char *dst, size_t size, const char *src) {
    size_t i = 0;
    for (; src[i] && i + 1 < size; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}

char *srv_error_json(const struct srv_error *err, size_t *len) {
    char message[sizeof err->message], param[sizeof err->param];
    ascii_copy(message, sizeof message, err->message[0] ? err->message : srv_error_code_name(err->code));
    ascii_copy(param, sizeof param, err->param);
    json_t *inner = json_pack(
        "{s:s, s:s, s:o, s:s}", "code", srv_error_code_name(err->code), "message", message, "param",
        param[0] ? json_string(param) : json_null(), "type", srv_error_type(err->code));
    if (!inner) return NULL;
    json_t *root = json_pack("{s:o}", "error", inner);
    if (!root) return NULL;
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (s && len) *len = strlen(s);
    return s;
}
