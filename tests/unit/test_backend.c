/*
 * test_backend.c - the backend registry (core/backend.c) through the public API: every build
 * lists the same entries, names resolve (auto to the first entry with a device), unknown names
 * and devices are refused with messages that say what exists, and an instance reports its
 * registry name, its health and its optional queries. The ops themselves: test_ops.c.
 */
#include <string.h>

#include "check.h"
#include "edm.h"

static void test_entries(void) {
    int n = edm_backend_registry_count();
    CHECK(n >= 2, "registry has %d entries", n);
    int first_with_device = -1, have_cpu = 0, have_cuda = 0;
    for (int i = 0; i < n; i++) {
        edm_backend_info bi;
        edm_error err;
        CHECK(edm_backend_registry_get(i, &bi, &err) == EDM_OK, "entry %d: %s", i, err.message);
        CHECK(bi.name && *bi.name && strcmp(bi.name, "auto") != 0, "entry %d has a real name", i);
        CHECK(bi.compiled || bi.devices == 0, "%s: not built but %d devices", bi.name, bi.devices);
        if (first_with_device < 0 && bi.devices > 0) first_with_device = i;
        if (strcmp(bi.name, "cpu") == 0) {
            have_cpu = 1;
            CHECK(bi.compiled && bi.devices == 1, "cpu: compiled %d, devices %d", bi.compiled,
                  bi.devices);
        }
        if (strcmp(bi.name, "cuda") == 0) have_cuda = 1;
    }
    CHECK(have_cpu && have_cuda, "cpu and cuda are listed in every build (%d, %d)", have_cpu,
          have_cuda);
    edm_backend_info bi;
    edm_error err;
    CHECK(edm_backend_registry_get(n, &bi, &err) == EDM_EINVAL, "entry past the end");
    CHECK(edm_backend_registry_get(-1, &bi, &err) == EDM_EINVAL, "entry -1");

    /* auto = the first entry with a device, by lookup and by construction */
    edm_backend_info first;
    CHECK(first_with_device >= 0 && edm_backend_registry_get(first_with_device, &first, NULL) ==
                                        EDM_OK,
          "some entry has a device");
    CHECK(edm_backend_lookup("auto", &bi, &err) == EDM_OK && strcmp(bi.name, first.name) == 0,
          "auto resolves to %s", first.name);
    CHECK(edm_backend_lookup(NULL, &bi, &err) == EDM_OK && strcmp(bi.name, first.name) == 0,
          "NULL resolves like auto");
    edm_backend *b = NULL;
    edm_backend_options o;
    edm_backend_options_default(&o);
    CHECK(strcmp(o.name, "auto") == 0, "default name '%s'", o.name);
    if (edm_backend_new(&o, &b, &err) == EDM_OK) {
        CHECK(strcmp(edm_backend_name(b), first.name) == 0, "auto made '%s'", edm_backend_name(b));
        edm_backend_free(b);
    } else {
        CHECK(0, "auto backend: %s", err.message);
    }
}

static void test_refusals(void) {
    edm_backend_info bi;
    edm_error err;
    CHECK(edm_backend_lookup("tpu", &bi, &err) == EDM_EINVAL &&
              strstr(err.message, "unknown backend 'tpu'") && strstr(err.message, "cpu") &&
              strstr(err.message, "cuda") && strstr(err.message, "auto"),
          "unknown name: '%s'", err.message);

    edm_backend_options o;
    edm_backend_options_default(&o);
    edm_backend *b = (edm_backend *)&o; /* must be reset to NULL on failure */
    o.name = "cpu";
    o.device = 1;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_EINVAL && b == NULL &&
              strstr(err.message, "device 1 does not exist"),
          "cpu device 1: '%s'", err.message);
    o.device = 0;
    o.precision = EDM_PRECISION_FP16; /* the cpu backend has fp32 and bf16 */
    CHECK(edm_backend_new(&o, &b, &err) == EDM_EUNSUPPORTED && b == NULL &&
              strstr(err.message, "fp32 or bf16"),
          "cpu fp16: '%s'", err.message);
    o.name = "nope";
    o.precision = EDM_PRECISION_FP32;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_EINVAL && b == NULL, "unknown name refused");

    /* an entry without a device (cuda here, unless a GPU is present) says why */
    if (edm_backend_lookup("cuda", &bi, &err) == EDM_OK && bi.devices == 0) {
        o.name = "cuda";
        enum edm_status st = edm_backend_new(&o, &b, &err);
        CHECK(st != EDM_OK && b == NULL && err.message[0], "cuda without a device: %d '%s'",
              (int)st, err.message);
        if (!bi.compiled)
            CHECK(strstr(err.message, "make CUDA=1") != NULL, "says how to build it: '%s'",
                  err.message);
    } else {
        SKIP("cuda has a device here: the refusal of a device-less entry is not tested");
    }
}

static void test_instance(void) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = "cpu";
    o.threads = 1;
    edm_backend *b = NULL;
    edm_error err;
    if (edm_backend_new(&o, &b, &err) != EDM_OK) {
        CHECK(0, "cpu backend: %s", err.message);
        return;
    }
    CHECK(strcmp(edm_backend_name(b), "cpu") == 0, "name '%s'", edm_backend_name(b));
    CHECK(edm_backend_device_lost(b) == 0, "a new backend is healthy");
    CHECK(strncmp(edm_backend_describe(b), "cpu (", 5) == 0, "describe '%s'",
          edm_backend_describe(b));
    size_t f = 1, t = 1;
    CHECK(edm_backend_mem_info(b, &f, &t, &err) == EDM_EUNSUPPORTED && strstr(err.message, "cpu"),
          "host memory is not reported: '%s'", err.message);
    long v = 7;
    CHECK(edm_backend_counter(b, "graph_replays", &v, &err) == EDM_EUNSUPPORTED && v == 7 &&
              strstr(err.message, "graph_replays"),
          "cpu has no graph counters: '%s'", err.message);
    edm_backend_free(b);
    edm_backend_free(NULL);
}

int main(void) {
    test_entries();
    test_refusals();
    test_instance();
    return check_finish();
}
