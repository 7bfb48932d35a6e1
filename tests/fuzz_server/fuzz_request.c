/*
 * fuzz_request.c - libFuzzer target for the daemon's request parser (server/json_req.c).
 *
 * Any bytes go in. The parser must not crash, leak or read out of bounds, and its answer
 * must keep the API's promises: on success every value is inside the limits and passes the
 * engine's own validation, images come converted for the model (values in range, hashed) and
 * the settings that need an image have one; on failure the error is a 400 or 404 with a
 * message, and its JSON form parses back. A broken promise aborts, which the fuzzer reports as a crash.
 *
 *   make fuzz: clang -fsanitize=fuzzer,address ... (run by tests/fuzz_server/fuzz.sh)
 *   make: with the plain main() of tests/fuzz/replay.c (replayed by test_replay.sh in `make test`)
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json_req.h"

static const struct srv_class_name names[] = {{"0", 0}, {"zero", 0}, {"cat", 3}, {"Dog", 5}};
static const struct srv_catalog_entry models[] = {{"uncond", 0, 18, 8, "00ff", NULL, 0, 1},
                                                  {"cond", 10, 40, 32, NULL, names, 4, 3},
                                                  {"m3", 1000, 2, 0, NULL, NULL, 0, 0}};
static const struct srv_catalog catalog = {models, 3};
static const struct srv_req_limits limits = {16, 1000, 600000, 3600000};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int seeded;
    if (!seeded) {
        json_object_seed(1); /* deterministic hashing: reproducible runs */
        seeded = 1;
    }
    struct srv_gen_request r;
    struct srv_error e;
    srv_error_clear(&e);
    enum srv_err rc = srv_json_req_parse_generate((const char *)data, size, &catalog, &limits, &r, &e);
    if (rc == SRV_OK) {
        FUZZ_ASSERT(r.model >= 0 && r.model < catalog.n);
        FUZZ_ASSERT(r.n >= 1 && r.n <= limits.max_n);
        FUZZ_ASSERT(r.seeds && r.class_labels);
        FUZZ_ASSERT(r.params.num_steps >= 2 && r.params.num_steps <= limits.max_steps);
        FUZZ_ASSERT(r.timeout_ms >= 1 && r.timeout_ms <= limits.max_timeout_ms);
        FUZZ_ASSERT(edm_sampler_params_validate(&r.params, NULL) == EDM_OK);
        for (int i = 0; i < r.n; i++) {
            FUZZ_ASSERT(r.class_labels[i] >= -1 && r.class_labels[i] < models[r.model].label_dim);
            FUZZ_ASSERT(models[r.model].label_dim > 0 || r.class_labels[i] == -1);
        }
        /* a start from an image: converted for the model, hashed; settings that need one */
        const struct srv_req_image *im = &r.image;
        const int C = models[r.model].channels, R = models[r.model].resolution;
        FUZZ_ASSERT(!im->mask || im->init_image);
        FUZZ_ASSERT((im->init_image != NULL) == (strlen(im->init_sha256) == 64));
        FUZZ_ASSERT((im->mask != NULL) == (strlen(im->mask_sha256) == 64));
        for (int k = 0; im->init_image && k < C * R * R; k++)
            FUZZ_ASSERT(im->init_image[k] >= -1 && im->init_image[k] <= 1);
        for (int k = 0; im->mask && k < R * R; k++) FUZZ_ASSERT(im->mask[k] >= 0 && im->mask[k] <= 1);
        FUZZ_ASSERT(im->init_image || (isnan(r.params.strength) && isnan(r.params.sigma_start)));
        FUZZ_ASSERT(r.variation_strength >= 0 && r.variation_strength <= 1);
        srv_gen_request_clear(&r);
    } else {
        int status = srv_error_http_status(rc);
        FUZZ_ASSERT(status == 400 || status == 404);
        FUZZ_ASSERT(e.code == rc && e.message[0] != '\0');
        FUZZ_ASSERT(r.seeds == NULL && r.class_labels == NULL);
        char *s = srv_error_json(&e, NULL);
        FUZZ_ASSERT(s != NULL);
        json_t *j = json_loads(s, 0, NULL);
        FUZZ_ASSERT(j != NULL);
        json_decref(j);
        free(s);
    }
    return 0;
}

/* For the shared replay driver (tests/fuzz/replay.c): whether the parser accepts the input. */
int edm_fuzz_accepts(const uint8_t *data, size_t size) {
    struct srv_gen_request r;
    struct srv_error e;
    srv_error_clear(&e);
    if (srv_json_req_parse_generate((const char *)data, size, &catalog, &limits, &r, &e) != SRV_OK)
        return 0;
    srv_gen_request_clear(&r);
    return 1;
}
