/*
 * fuzz_multipart.c - libFuzzer target for the multipart/form-data reading of OpenAI's edits
 * and variations: libmicrohttpd's post processor as server/multipart.c drives it, then the
 * form as a request (server/form_req.c, through the JSON parser and the image decoding).
 *
 * Input: the body of a form whose Content-Type is multipart/form-data; boundary=XyZ, or,
 * when it starts with "CT:", a first line that is the Content-Type itself (printable bytes
 * kept), then the body. The post processor reads the boundary from the request's headers,
 * so each input is a real request on a real MHD connection: a daemon with no listening
 * socket and no threads of its own gets one end of a socketpair (MHD_add_connection), the
 * request's headers are written to the other, and MHD_run turns until the access handler
 * has run the code under test on the input.
 *
 * Invariants (abort on violation): a parsed form has at most the limit's parts, each named
 * (1..63 bytes, no name twice) with its bytes NUL-terminated and within its limit; a refusal
 * is a 400 or 413 with a message and an empty form. A form made a request passes the engine's
 * validation and has its images converted for the model; a refusal is a 400 or 404.
 *
 *   make fuzz: clang -fsanitize=fuzzer,address ... (tests/fuzz_server/fuzz.sh multipart)
 *   make: with the plain main() of tests/fuzz/replay.c (replayed by test_replay.sh)
 */
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "form_req.h"
#include "fuzz.h"
#include "multipart.h"

static const struct srv_class_name names[] = {{"0", 0}, {"zero", 0}, {"seven", 7}};
static const struct srv_catalog_entry models[] = {{"uncond", 0, 4, 8, NULL, NULL, 0, 1},
                                                  {"cond", 10, 4, 16, NULL, names, 3, 3}};
static const struct srv_catalog catalog = {models, 2};
static const struct srv_req_limits limits = {4, 100, 600000, 3600000};
/* small, so that the fuzzer meets them */
static const struct srv_form_limits form_limits = {.max_parts = 8, .max_text = 256, .max_file = 4096};

static const uint8_t *in_body;
static size_t in_len;
static int handled, accepted;

static void check_form(enum srv_err rc, const struct srv_form *form, const struct srv_error *e) {
    if (rc != SRV_OK) {
        FUZZ_ASSERT(rc == SRV_E_BAD_REQUEST || rc == SRV_E_TOO_LARGE);
        FUZZ_ASSERT(e->code == rc && e->message[0] && form->n == 0);
        return;
    }
    FUZZ_ASSERT(form->n >= 0 && form->n <= form_limits.max_parts);
    for (int i = 0; i < form->n; i++) {
        const struct srv_form_part *p = &form->parts[i];
        FUZZ_ASSERT(p->name[0] && strlen(p->name) <= SRV_FORM_MAX_NAME);
        FUZZ_ASSERT(p->data && p->data[p->len] == '\0' && p->len < p->cap);
        FUZZ_ASSERT(p->len <= (p->is_file ? form_limits.max_file : form_limits.max_text));
        FUZZ_ASSERT(srv_form_find(form, p->name) == p); /* no name twice */
    }
}

static void check_request(enum srv_err rc, struct srv_gen_request *r, const struct srv_error *e) {
    if (rc != SRV_OK) {
        int status = srv_error_http_status(rc);
        if (!(status == 400 || status == 404)) fprintf(stderr, "status %d: %s\n", status, e->message);
        FUZZ_ASSERT(status == 400 || status == 404);
        FUZZ_ASSERT(e->message[0] && r->seeds == NULL && r->image.init_image == NULL);
        return;
    }
    const int C = models[r->model].channels, R = models[r->model].resolution;
    FUZZ_ASSERT(r->n >= 1 && r->n <= limits.max_n && r->seeds && r->class_labels);
    FUZZ_ASSERT(edm_sampler_params_validate(&r->params, NULL) == EDM_OK);
    FUZZ_ASSERT(r->image.init_image && strlen(r->image.init_sha256) == 64); /* an image is required */
    for (int k = 0; k < C * R * R; k++) FUZZ_ASSERT(fabsf(r->image.init_image[k]) <= 1);
    for (int k = 0; r->image.mask && k < R * R; k++) FUZZ_ASSERT(r->image.mask[k] >= 0 && r->image.mask[k] <= 1);
    FUZZ_ASSERT(!isnan(r->params.strength) || !isnan(r->params.sigma_start) || r->image.mask);
    srv_gen_request_clear(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data, (void)upload_data_size, (void)con_cls;
    struct srv_form form;
    struct srv_error e;
    srv_error_clear(&e);
    enum srv_err rc = srv_multipart_parse(conn, (const char *)in_body, in_len, &form_limits, &form, &e);
    check_form(rc, &form, &e);
    accepted = rc == SRV_OK;
    for (int kind = SRV_FORM_EDITS; rc == SRV_OK && kind <= SRV_FORM_VARIATIONS; kind++) {
        struct srv_gen_request r;
        srv_error_clear(&e);
        enum srv_err rrc = srv_form_request(&form, (enum srv_form_kind)kind, &catalog, &limits, &r, &e);
        check_request(rrc, &r, &e);
    }
    srv_form_clear(&form);
    handled = 1;
    return MHD_NO; /* closes the connection: the next input gets a new one */
}

static struct MHD_Daemon *daemon_once(void) {
    static struct MHD_Daemon *d;
    if (!d) {
        json_object_seed(1);
        d = MHD_start_daemon(MHD_USE_NO_LISTEN_SOCKET, 0, NULL, NULL, on_request, NULL, MHD_OPTION_END);
        FUZZ_ASSERT(d != NULL);
    }
    return d;
}

/* Runs the input as a request's body: 1 once the handler has seen it. */
static int run(const uint8_t *data, size_t size) {
    char ct[256] = "multipart/form-data; boundary=XyZ";
    if (size >= 3 && memcmp(data, "CT:", 3) == 0) { /* the Content-Type from the first line */
        size_t k = 3, n = 0;
        for (; k < size && data[k] != '\n'; k++)
            if (data[k] >= 0x20 && data[k] < 0x7f && n + 1 < sizeof ct) ct[n++] = (char)data[k];
        ct[n] = '\0';
        data += k < size ? k + 1 : k, size -= k < size ? k + 1 : k;
    }
    in_body = data, in_len = size;
    handled = accepted = 0;
    struct MHD_Daemon *d = daemon_once();
    int sv[2];
    FUZZ_ASSERT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    char head[512];
    int n = snprintf(head, sizeof head, "POST /v1/images/edits HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n\r\n", ct);
    FUZZ_ASSERT(write(sv[1], head, (size_t)n) == n);
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    FUZZ_ASSERT(MHD_add_connection(d, sv[0], (const struct sockaddr *)&peer, sizeof peer) == MHD_YES);
    for (int i = 0; i < 1000 && !handled; i++) MHD_run(d);
    close(sv[1]);
    for (int i = 0; i < 10; i++) MHD_run(d); /* lets MHD close its end */
    return handled;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    run(data, size); /* an empty Content-Type makes MHD refuse the request itself: not ours */
    return 0;
}

/* For the replay driver (tests/fuzz/replay.c): whether the form is read as a form. */
int edm_fuzz_accepts(const uint8_t *data, size_t size) {
    return run(data, size) && accepted;
}
