/*
 * test_server.c - unit tests of the daemon's pure parts: the request parser (data-driven
 * cases: every field, OpenAI's and a PNG's Request text's included, every error and the
 * field it names), Accept negotiation and media types, constant-time key checks, base64,
 * the error JSON shape, and the metrics text format.
 * Links build/libedmd.a (the daemon without its main()); built by make (Makefile).
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "errors.h"
#include "json_req.h"
#include "metrics.h"
#include "negotiate.h"
#include "util.h"

#include "check.h"

#define SHA "e4379e708ebd91bee4e99a34476454cc330069797931e2170655ae62d93b8d6c"
static const struct srv_class_name digits[] = {
    {"0", 0}, {"zero", 0}, {"1", 1}, {"one", 1}, {"2", 2}, {"two", 2}, {"3", 3}, {"three", 3},
    {"4", 4}, {"four", 4}, {"5", 5}, {"five", 5}, {"6", 6}, {"six", 6}, {"7", 7}, {"seven", 7},
    {"8", 8}, {"eight", 8}, {"9", 9}, {"nine", 9}};
static const struct srv_catalog_entry models[] = {{"uncond", 0, 18, 8, SHA, NULL, 0, 1},
                                                  {"cond", 10, 40, 28, NULL, digits, 20, 3}};
static const struct srv_catalog catalog = {models, 2};
static const struct srv_req_limits limits = {8, 100, 60000, 120000};

/* Test images as base64: an 8x8 gray ramp, an 8x8 white RGBA whose left half is
 * transparent, and a PNG header of 2000x8 pixels (past the server's cap). */
#define GRAY8 "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAAAAADhZOFXAAAAU0lEQVR42gFIALf/AAAePFp4lrTSAAMhP117mbfVAAYk" \
              "QmB+nLrYAAknRWOBn73bAAwqSGaEosDeAA8tS2mHpcPhABIwTmyKqMbkABUzUW+Nq8nnxSUc4ZRGfNEAAAAASUVORK5CYII="
#define RGBA8 "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAYAAADED76LAAAAFElEQVR42mP4//8/AxpGAQwjQwEARQbfIdZNzbgAAAAASUVORK5CYII="
#define WIDE "iVBORw0KGgoAAAANSUhEUgAAB9AAAAAICAAAAACEmTtpAAAAAElFTkSuQmCC"

struct bad_case {
    const char *body;
    enum srv_err code;
    const char *param; /* NULL: null */
};

static const struct bad_case bad_cases[] = {
    {"{", SRV_E_INVALID_JSON, NULL},
    {"[]", SRV_E_INVALID_JSON, NULL},
    {"\"x\"", SRV_E_INVALID_JSON, NULL},
    {"null", SRV_E_INVALID_JSON, NULL},
    {"{} {}", SRV_E_INVALID_JSON, NULL},
    {"{\"n\":1,\"n\":1}", SRV_E_INVALID_JSON, NULL},
    {"{\"x\":1}", SRV_E_INVALID_PARAM, "x"},
    {"{\"Steps\":4}", SRV_E_INVALID_PARAM, "Steps"},
    {"{\"model\":\"zzz\"}", SRV_E_MODEL_NOT_FOUND, "model"},
    {"{\"model\":1}", SRV_E_INVALID_PARAM, "model"},
    {"{\"n\":0}", SRV_E_INVALID_PARAM, "n"},
    {"{\"n\":9}", SRV_E_INVALID_PARAM, "n"},
    {"{\"n\":2.5}", SRV_E_INVALID_PARAM, "n"},
    {"{\"n\":true}", SRV_E_INVALID_PARAM, "n"},
    {"{\"seed\":-5}", SRV_E_INVALID_PARAM, "seed"},
    {"{\"seed\":1.5}", SRV_E_INVALID_PARAM, "seed"},
    {"{\"seed\":\"1\"}", SRV_E_INVALID_PARAM, "seed"},
    {"{\"seeds\":5}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"seeds\":[]}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"seeds\":[1,-1]}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"seeds\":[1,2,3,4,5,6,7,8,9]}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"seeds\":[1,2],\"n\":1}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"seed\":1,\"seeds\":[1]}", SRV_E_INVALID_PARAM, "seeds"},
    {"{\"class_label\":0}", SRV_E_INVALID_PARAM, "class_label"},
    {"{\"class_labels\":[0]}", SRV_E_INVALID_PARAM, "class_labels"},
    {"{\"model\":\"cond\",\"class_label\":10}", SRV_E_INVALID_PARAM, "class_label"},
    {"{\"model\":\"cond\",\"class_label\":-2}", SRV_E_INVALID_PARAM, "class_label"},
    {"{\"model\":\"cond\",\"class_label\":\"1\"}", SRV_E_INVALID_PARAM, "class_label"},
    {"{\"model\":\"cond\",\"class_labels\":[1,2],\"n\":3}", SRV_E_INVALID_PARAM, "class_labels"},
    {"{\"model\":\"cond\",\"class_label\":1,\"class_labels\":[1]}", SRV_E_INVALID_PARAM, "class_labels"},
    {"{\"steps\":1}", SRV_E_INVALID_PARAM, "steps"},
    {"{\"steps\":101}", SRV_E_INVALID_PARAM, "steps"},
    {"{\"steps\":18.0}", SRV_E_INVALID_PARAM, "steps"},
    {"{\"sigma_min\":0}", SRV_E_INVALID_PARAM, "sigma_min"},
    {"{\"sigma_min\":\"a\"}", SRV_E_INVALID_PARAM, "sigma_min"},
    {"{\"sigma_max\":-1}", SRV_E_INVALID_PARAM, "sigma_max"},
    {"{\"sigma_min\":2,\"sigma_max\":1}", SRV_E_INVALID_PARAM, "sigma_max"},
    {"{\"rho\":0}", SRV_E_INVALID_PARAM, "rho"},
    {"{\"S_churn\":-0.1}", SRV_E_INVALID_PARAM, "S_churn"},
    {"{\"S_min\":-1}", SRV_E_INVALID_PARAM, "S_min"},
    {"{\"S_max\":\"infinity\"}", SRV_E_INVALID_PARAM, "S_max"},
    {"{\"S_min\":3,\"S_max\":2}", SRV_E_INVALID_PARAM, "S_min"},
    {"{\"S_noise\":-1}", SRV_E_INVALID_PARAM, "S_noise"},
    {"{\"rho\":\"inf\"}", SRV_E_INVALID_PARAM, "rho"},
    {"{\"solver\":\"Heun\"}", SRV_E_INVALID_PARAM, "solver"},
    {"{\"solver\":1}", SRV_E_INVALID_PARAM, "solver"},
    {"{\"disc\":\"\"}", SRV_E_INVALID_PARAM, "disc"},
    {"{\"schedule\":\"cosine\"}", SRV_E_INVALID_PARAM, "schedule"},
    {"{\"scaling\":[]}", SRV_E_INVALID_PARAM, "scaling"},
    {"{\"alpha\":0}", SRV_E_INVALID_PARAM, "alpha"},
    {"{\"alpha\":1.5}", SRV_E_INVALID_PARAM, "alpha"},
    {"{\"alpha\":\"1\"}", SRV_E_INVALID_PARAM, "alpha"},
    {"{\"num_steps\":18}", SRV_E_INVALID_PARAM, "num_steps"},           /* generate.py's keyword */
    {"{\"discretization\":\"vp\"}", SRV_E_INVALID_PARAM, "discretization"}, /* is not a field */
    {"{\"timeout_ms\":0}", SRV_E_INVALID_PARAM, "timeout_ms"},
    {"{\"timeout_ms\":120001}", SRV_E_INVALID_PARAM, "timeout_ms"},
    /* OpenAI's fields */
    {"{\"prompt\":\"a cat\"}", SRV_E_INVALID_PARAM, "prompt"}, /* unconditional: empty only */
    {"{\"prompt\":7}", SRV_E_INVALID_PARAM, "prompt"},
    {"{\"model\":\"cond\",\"prompt\":\"ten\"}", SRV_E_INVALID_PARAM, "prompt"},
    {"{\"model\":\"cond\",\"prompt\":\"sev\"}", SRV_E_INVALID_PARAM, "prompt"},
    {"{\"model\":\"cond\",\"prompt\":\"seven\",\"class_label\":3}", SRV_E_INVALID_PARAM, "prompt"},
    {"{\"model\":\"cond\",\"prompt\":\"1\",\"class_labels\":[1,2]}", SRV_E_INVALID_PARAM, "prompt"},
    {"{\"size\":\"1024x1024\"}", SRV_E_INVALID_PARAM, "size"},
    {"{\"size\":\"8x9\"}", SRV_E_INVALID_PARAM, "size"},
    {"{\"size\":\"8x8 \"}", SRV_E_INVALID_PARAM, "size"},
    {"{\"size\":\"x8\"}", SRV_E_INVALID_PARAM, "size"},
    {"{\"size\":8}", SRV_E_INVALID_PARAM, "size"},
    {"{\"model\":\"cond\",\"size\":\"8x8\"}", SRV_E_INVALID_PARAM, "size"},
    {"{\"response_format\":\"png\"}", SRV_E_INVALID_PARAM, "response_format"},
    {"{\"output_format\":\"jpeg\"}", SRV_E_INVALID_PARAM, "output_format"},
    {"{\"quality\":1}", SRV_E_INVALID_PARAM, "quality"},
    {"{\"style\":[]}", SRV_E_INVALID_PARAM, "style"},
    {"{\"user\":{}}", SRV_E_INVALID_PARAM, "user"},
    {"{\"background\":\"auto\"}", SRV_E_INVALID_PARAM, "background"},
    /* a PNG's Request text */
    {"{\"model_sha256\":\"00\"}", SRV_E_INVALID_PARAM, "model_sha256"},
    {"{\"nfe\":18}", SRV_E_INVALID_PARAM, "nfe"},
    {"{\"nfe\":35.0}", SRV_E_INVALID_PARAM, "nfe"},
    {"{\"solver\":\"euler\",\"nfe\":35}", SRV_E_INVALID_PARAM, "nfe"},
    {"{\"edm_serve_version\":1}", SRV_E_INVALID_PARAM, "edm_serve_version"},
    /* a start from an image, and variations */
    {"{\"init_image\":\"@@@@\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"aGVsbG8=\"}", SRV_E_INVALID_PARAM, "init_image"}, /* "hello" */
    {"{\"init_image\":\"aGVsbG8=x\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"a\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":5}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"data:image/jpeg;base64," GRAY8 "\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"data:image/png," GRAY8 "\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"" WIDE "\"}", SRV_E_INVALID_PARAM, "init_image"},
    {"{\"init_image\":\"" GRAY8 "\",\"mask\":\"aGVsbG8=\"}", SRV_E_INVALID_PARAM, "mask"},
    {"{\"mask\":\"" GRAY8 "\"}", SRV_E_INVALID_PARAM, "mask"},
    {"{\"strength\":0.5}", SRV_E_INVALID_PARAM, "strength"},
    {"{\"sigma_start\":2}", SRV_E_INVALID_PARAM, "sigma_start"},
    {"{\"init_image\":\"" GRAY8 "\",\"strength\":0}", SRV_E_INVALID_PARAM, "strength"},
    {"{\"init_image\":\"" GRAY8 "\",\"strength\":1.5}", SRV_E_INVALID_PARAM, "strength"},
    {"{\"init_image\":\"" GRAY8 "\",\"strength\":\"0.5\"}", SRV_E_INVALID_PARAM, "strength"},
    {"{\"init_image\":\"" GRAY8 "\",\"strength\":0.5,\"sigma_start\":2}", SRV_E_INVALID_PARAM, "sigma_start"},
    {"{\"init_image\":\"" GRAY8 "\",\"resample_count\":3}", SRV_E_INVALID_PARAM, "resample_jump"},
    {"{\"init_image\":\"" GRAY8 "\",\"resample_jump\":18}", SRV_E_INVALID_PARAM, "resample_jump"},
    {"{\"resample_count\":101}", SRV_E_INVALID_PARAM, "resample_count"},
    {"{\"resample_jump\":-1}", SRV_E_INVALID_PARAM, "resample_jump"},
    {"{\"variation_strength\":0.5}", SRV_E_INVALID_PARAM, "variation_strength"},
    {"{\"variation_seed\":1,\"variation_strength\":1.5}", SRV_E_INVALID_PARAM, "variation_strength"},
    {"{\"variation_seed\":-1}", SRV_E_INVALID_PARAM, "variation_seed"},
    {"{\"variation_seed\":\"1\"}", SRV_E_INVALID_PARAM, "variation_seed"},
    {"{\"init_image_sha256\":\"00\"}", SRV_E_INVALID_PARAM, "init_image_sha256"},
    {"{\"init_image\":\"" GRAY8 "\",\"init_image_sha256\":\"00\"}", SRV_E_INVALID_PARAM, "init_image_sha256"},
    {"{\"init_image\":\"" GRAY8 "\",\"mask_sha256\":\"00\"}", SRV_E_INVALID_PARAM, "mask_sha256"},
    {"{\"init_image\":\"" GRAY8 "\",\"init_image_sha256\":1}", SRV_E_INVALID_PARAM, "init_image_sha256"},
    {"{\"seed\":18446744073709551615}", SRV_E_INVALID_JSON, NULL}, /* beyond int64 */
    {"{\"rho\":1e999}", SRV_E_INVALID_JSON, NULL},
};

/* The message of an unknown class name lists the names. */
static void test_prompt_message(void) {
    struct srv_gen_request r;
    struct srv_error e;
    const char *body = "{\"model\":\"cond\",\"prompt\":\"Ten\"}";
    srv_json_req_parse_generate(body, strlen(body), &catalog, &limits, &r, &e);
    CHECK(strstr(e.message, "\"Ten\"") && strstr(e.message, "0/zero, 1/one") && strstr(e.message, "9/nine"),
          "unknown class: %s", e.message);
    body = "{\"size\":\"1024x1024\"}";
    srv_json_req_parse_generate(body, strlen(body), &catalog, &limits, &r, &e);
    CHECK(strstr(e.message, "\"8x8\""), "size names the supported size: %s", e.message);
}

static void test_bad(void) {
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        struct srv_gen_request r;
        struct srv_error e;
        srv_error_clear(&e);
        enum srv_err got = srv_json_req_parse_generate(c->body, strlen(c->body), &catalog, &limits, &r, &e);
        CHECK(got == c->code, "%s: code %s, want %s (%s)", c->body, srv_error_code_name(got),
              srv_error_code_name(c->code), e.message);
        CHECK(strcmp(e.param, c->param ? c->param : "") == 0, "%s: param '%s', want '%s'", c->body, e.param,
              c->param ? c->param : "");
        CHECK(e.message[0] != '\0', "%s: no message", c->body);
        CHECK(r.seeds == NULL && r.class_labels == NULL, "%s: output not cleared", c->body);
    }
}

static int parse(const char *body, struct srv_gen_request *r) {
    struct srv_error e;
    enum srv_err got = srv_json_req_parse_generate(body, strlen(body), &catalog, &limits, r, &e);
    if (got) fprintf(stderr, "  parse %s: %s\n", body, e.message);
    return got;
}

static void test_good(void) {
    struct srv_gen_request r;
    CHECK(parse("", &r) == SRV_OK, "empty body");
    CHECK(r.model == 0 && r.n == 1 && !r.seeds_given && r.params.num_steps == 18 && !r.params.ablation &&
              r.timeout_ms == 60000 && r.class_labels[0] == -1 && isnan(r.params.sigma_min) &&
              isinf(r.params.S_max) && r.params.rho == 7,
          "defaults");
    srv_gen_request_fill_seeds(&r, 41);
    CHECK(r.seeds[0] == 41, "fill seeds");
    srv_gen_request_clear(&r);

    CHECK(parse("{\"model\":\"cond\"}", &r) == SRV_OK, "cond");
    CHECK(r.model == 1 && r.params.num_steps == 40, "model default steps");
    srv_gen_request_clear(&r);

    CHECK(parse("{\"n\":3,\"seed\":10,\"steps\":5,\"sigma_min\":0.01,\"sigma_max\":50,\"rho\":5,\"S_churn\":"
                "40,\"S_min\":0.05,\"S_max\":50,\"S_noise\":1.003,\"timeout_ms\":500,\"model\":null}",
                &r) == SRV_OK,
          "full edm request");
    CHECK(r.n == 3 && r.seeds_given && r.seeds[0] == 10 && r.seeds[2] == 12 && r.params.num_steps == 5 &&
              r.params.sigma_min == 0.01 && r.params.sigma_max == 50 && r.params.rho == 5 &&
              r.params.S_churn == 40 && r.params.S_min == 0.05 && r.params.S_max == 50 &&
              r.params.S_noise == 1.003 && r.timeout_ms == 500 && !r.params.ablation,
          "full edm values");
    srv_gen_request_clear(&r);

    CHECK(parse("{\"solver\":\"euler\"}", &r) == SRV_OK, "ablation");
    CHECK(r.params.ablation && r.params.solver == EDM_SOLVER_EULER && r.params.disc == EDM_DISC_EDM &&
              r.params.schedule == EDM_SCHEDULE_LINEAR && r.params.scaling == EDM_SCALING_NONE &&
              edm_sampler_params_nfe(&r.params) == 18,
          "ablation defaults like generate.py");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"disc\":\"vp\",\"schedule\":\"vp\",\"scaling\":\"vp\",\"solver\":null}", &r) == SRV_OK, "vp");
    CHECK(r.params.ablation && r.params.solver == EDM_SOLVER_HEUN && r.params.disc == EDM_DISC_VP &&
              r.params.schedule == EDM_SCHEDULE_VP && r.params.scaling == EDM_SCALING_VP,
          "vp ablation");
    srv_gen_request_clear(&r);

    CHECK(parse("{\"model\":\"cond\",\"class_labels\":[3,null,-1,9]}", &r) == SRV_OK, "labels");
    CHECK(r.n == 4 && r.class_labels[0] == 3 && r.class_labels[1] == -1 && r.class_labels[2] == -1 &&
              r.class_labels[3] == 9 && !r.seeds_given,
          "labels values");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"class_label\":7,\"n\":2}", &r) == SRV_OK, "label");
    CHECK(r.class_labels[0] == 7 && r.class_labels[1] == 7, "label for all");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"class_label\":null,\"class_labels\":null,\"seed\":null,\"seeds\":null}", &r) == SRV_OK,
          "nulls everywhere");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"class_label\":-1}", &r) == SRV_OK, "-1 on unconditional model (drawn: nothing)");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"seeds\":[5,0,9223372036854775807]}", &r) == SRV_OK, "seeds");
    CHECK(r.n == 3 && r.seeds[2] == 9223372036854775807ull, "big seed");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"S_max\":\"inf\",\"S_min\":1}", &r) == SRV_OK && isinf(r.params.S_max), "S_max inf");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"alpha\":0.5}", &r) == SRV_OK && r.params.alpha == 0.5 && r.params.ablation &&
              r.params.solver == EDM_SOLVER_HEUN && edm_sampler_params_nfe(&r.params) == 35,
          "alpha selects the ablation sampler");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"alpha\":null,\"steps\":null}", &r) == SRV_OK && !r.params.ablation &&
              r.params.num_steps == 18,
          "null alpha keeps the EDM sampler");
    srv_gen_request_clear(&r);
    CHECK(parse(" {\"steps\" : 2 } \n", &r) == SRV_OK && r.params.num_steps == 2, "whitespace");
    srv_gen_request_clear(&r);
    /* OpenAI's Images fields */
    CHECK(parse("{\"model\":\"cond\",\"prompt\":\" Seven \",\"n\":2}", &r) == SRV_OK &&
              r.class_labels[0] == 7 && r.class_labels[1] == 7,
          "prompt names the class, any case, spaces trimmed");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"prompt\":\"3\",\"class_label\":3}", &r) == SRV_OK &&
              r.class_labels[0] == 3,
          "prompt agreeing with class_label");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"prompt\":\"nine\",\"class_labels\":[null,9,-1]}", &r) == SRV_OK &&
              r.n == 3 && r.class_labels[0] == 9 && r.class_labels[2] == 9,
          "prompt fills the labels left to chance");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"prompt\":\"\"}", &r) == SRV_OK && r.class_labels[0] == -1,
          "empty prompt: a class drawn from the seed");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"prompt\":\" \",\"size\":\"8x8\",\"response_format\":\"url\",\"output_format\":\"png\","
                "\"quality\":\"hd\",\"style\":\"vivid\",\"user\":\"u-1\"}",
                &r) == SRV_OK &&
              r.want_url && r.class_labels[0] == -1,
          "OpenAI's fields on an unconditional model");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"prompt\":null,\"size\":null,\"response_format\":null,\"output_format\":null,"
                "\"quality\":null,\"style\":null,\"user\":null,\"model_sha256\":null,\"nfe\":null,"
                "\"edm_serve_version\":null}",
                &r) == SRV_OK && !r.want_url,
          "OpenAI's fields as null");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"size\":\"auto\",\"response_format\":\"b64_json\"}", &r) == SRV_OK && !r.want_url, "auto size");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"size\":\"28x28\"}", &r) == SRV_OK, "the model's size");
    srv_gen_request_clear(&r);
    /* a PNG's Request text */
    CHECK(parse("{\"model\":\"uncond\",\"model_sha256\":\"" SHA "\",\"seed\":3,\"class_label\":null,"
                "\"steps\":4,\"sigma_min\":0.002,\"sigma_max\":80,\"rho\":7,\"S_churn\":0,\"S_min\":0,"
                "\"S_max\":\"inf\",\"S_noise\":1,\"nfe\":7,\"edm_serve_version\":\"0.0.1\"}",
                &r) == SRV_OK && r.params.num_steps == 4 && !r.params.ablation,
          "a Request text");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model_sha256\":\"E4379E708EBD91BEE4E99A34476454CC330069797931E2170655AE62D93B8D6C\"}", &r) == SRV_OK,
          "model_sha256 in capitals");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"model\":\"cond\",\"model_sha256\":\"00\"}", &r) == SRV_OK, "no hash known: not checked");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"solver\":\"euler\",\"steps\":5,\"nfe\":5}", &r) == SRV_OK, "euler nfe");
    srv_gen_request_clear(&r);
    CHECK(parse("{\"seed\":9223372036854775807,\"n\":2}", &r) == SRV_OK, "seed range near the top");
    CHECK(r.seeds[1] == 9223372036854775808ull, "consecutive seed past int64 is fine (uint64)");
    srv_gen_request_clear(&r);
}

/* init_image / mask: decoded, converted for the model, hashed; the default strength. */
static void test_images(void) {
    struct srv_gen_request r;
    struct srv_error e;
    uint8_t *png;
    size_t len;
    char sha[65];
    CHECK(srv_image_b64_decode(GRAY8, strlen(GRAY8), "x", &png, &len, &e) == SRV_OK && len == 140,
          "base64 of the test PNG: %zu bytes", len);
    edm_sha256_hex(png, len, sha);
    free(png);

    CHECK(parse("{\"init_image\":\"" GRAY8 "\",\"seed\":1}", &r) == SRV_OK, "init_image");
    CHECK(r.image.init_image && !r.image.mask && r.params.strength == EDM_IMG2IMG_DEFAULT_STRENGTH &&
              isnan(r.params.sigma_start) && !strcmp(r.image.init_sha256, sha) && !r.image.mask_sha256[0],
          "img2img: the image, strength 0.5, its sha256");
    /* the ramp value (x*30 + y*3) & 255 at x = 1, y = 2, as 2 u - 1 */
    CHECK(r.image.init_image && r.image.init_image[2 * 8 + 1] == (float)(2 * (float)(36 / 255.0) - 1),
          "init image values: %g", r.image.init_image ? r.image.init_image[17] : 0);
    srv_gen_request_clear(&r);

    /* a data URL (as a canvas gives), MIME line breaks, a mask, the Request text's hashes */
    char body[2048];
    snprintf(body, sizeof body,
             "{\"init_image\":\"data:image/png;base64,%.60s\\r\\n%s\",\"mask\":\" " RGBA8 " \","
             "\"init_image_sha256\":\"%s\",\"variation_seed\":4,\"variation_strength\":0.25}",
             GRAY8, GRAY8 + 60, sha);
    char *at = strstr(body, sha);
    for (int k = 0; at && k < 64; k++) at[k] = (char)(at[k] >= 'a' && at[k] <= 'f' ? at[k] - 32 : at[k]);
    CHECK(parse(body, &r) == SRV_OK, "data URL, line breaks, mask, hash in capitals");
    CHECK(r.image.init_image && r.image.mask && isnan(r.params.strength) && r.variation_seed == 4 &&
              r.variation_strength == 0.25 && r.image.mask_sha256[0],
          "inpainting: the full schedule by default; the variation");
    /* the RGBA mask's left half is transparent: repaint there (1 - alpha), keep the right */
    CHECK(r.image.mask && r.image.mask[3 * 8 + 0] == 1 && r.image.mask[3 * 8 + 7] == 0,
          "mask from transparency: %g %g", r.image.mask ? r.image.mask[24] : -1, r.image.mask ? r.image.mask[31] : -1);
    srv_gen_request_clear(&r);

    CHECK(parse("{\"model\":\"cond\",\"init_image\":\"" GRAY8 "\",\"sigma_start\":3,\"resample_jump\":2,"
                "\"resample_count\":2,\"steps\":5,\"nfe\":17}",
                &r) == SRV_OK,
          "sigma_start, RePaint and its nfe (9 + 2 jump points x 1 pass x 2 steps x 2)");
    CHECK(r.params.sigma_start == 3 && isnan(r.params.strength) && r.image.init_image &&
              r.image.init_image[0] == -1 && r.image.init_image[28 * 28] == -1 && r.image.init_image[3 * 28 * 28 - 1] > 0,
          "a gray 8x8 image for a 28x28 RGB model: replicated and resized");
    srv_gen_request_clear(&r);

    /* the form's way: images apart, not fields */
    json_t *o = json_pack("{s:i}", "seed", 3);
    const uint8_t bytes[] = {1, 2, 3};
    struct srv_image_src src = {.image = bytes, .image_len = 3, .image_param = "image", .mask_param = "mask"};
    CHECK(srv_json_req_parse_object(o, &src, &catalog, &limits, &r, &e) == SRV_E_INVALID_PARAM &&
              !strcmp(e.param, "image"),
          "images apart: a bad PNG names the form's field: %s", e.param);
    json_object_set_new(o, "init_image", json_string(GRAY8));
    CHECK(srv_json_req_parse_object(o, &src, &catalog, &limits, &r, &e) == SRV_E_INVALID_PARAM &&
              !strcmp(e.param, "init_image"),
          "images apart: init_image is not a field");
    json_decref(o);
}

static void test_negotiate(void) {
    static const char *const offers[] = {"application/json", "image/png"};
    static const struct {
        const char *accept;
        int want;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"*/*", 0},
        {"image/png", 1},
        {"IMAGE/PNG", 1},
        {"image/*", 1},
        {"image/png, application/json", 0}, /* equal q: the server's order */
        {"application/json;q=0.5, image/png", 1},
        {"image/png;q=0.4, application/json;q=0.5", 0},
        {"image/png ; q=0.9 , */*;q=0.1", 1},
        {"image/*;q=0.8, application/json;q=0.2", 1},
        {"image/png;q=0, */*", 0},  /* the most specific range decides */
        {"image/png;q=0, image/*", -1},
        {"image/webp", -1},
        {"text/html", -1},
        {"application/json;q=0", -1},
        {"image/png;q=abc", -1},     /* a broken q counts as 0 */
        {"image/png;level=1;q=0.5, application/json;q=0.4", 1},
        {"image", -1},
        {"application/*", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = srv_accept_choose(cases[i].accept, offers, 2);
        CHECK(got == cases[i].want, "Accept '%s': %d, want %d", cases[i].accept ? cases[i].accept : "(none)",
              got, cases[i].want);
    }
    CHECK(srv_media_type_is("application/json; charset=utf-8", "application/json"), "media type with parameters");
    CHECK(srv_media_type_is("Application/X-WWW-Form-Urlencoded", "application/x-www-form-urlencoded"), "case");
    CHECK(!srv_media_type_is("application/jsonx", "application/json") && !srv_media_type_is(NULL, "a/b"),
          "not a prefix");
}

static void test_auth(void) {
    char *k[] = {"alpha", "beta-key"};
    struct srv_strlist keys = {k, 2}, none = {NULL, 0};
    CHECK(srv_auth_check(&none, NULL), "no keys: open");
    CHECK(!srv_auth_check(&keys, NULL), "missing header");
    CHECK(srv_auth_check(&keys, "Bearer alpha"), "first key");
    CHECK(srv_auth_check(&keys, "Bearer beta-key"), "second key");
    CHECK(srv_auth_check(&keys, "bearer  alpha "), "case and spaces");
    CHECK(!srv_auth_check(&keys, "Bearer alph"), "prefix");
    CHECK(!srv_auth_check(&keys, "Bearer alphaa"), "longer");
    CHECK(!srv_auth_check(&keys, "Bearer "), "empty");
    CHECK(!srv_auth_check(&keys, "alpha"), "no scheme");
    CHECK(!srv_auth_check(&keys, "Basic alpha"), "other scheme");
}

static void test_base64(void) {
    const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char out[16];
        srv_base64_encode((const uint8_t *)in[i], strlen(in[i]), out);
        CHECK(strcmp(out, want[i]) == 0 && strlen(out) == srv_base64_len(strlen(in[i])), "base64 %s", in[i]);
    }
}

static void test_errors(void) {
    struct srv_error e;
    srv_error_set(&e, SRV_E_INVALID_PARAM, "steps", "bad \"steps\" \xff value");
    size_t len;
    char *s = srv_error_json(&e, &len);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    CHECK(j != NULL, "error JSON parses (invalid UTF-8 sanitised)");
    CHECK(j && json_object_size(j) == 1 && json_object_size(json_object_get(j, "error")) == 4,
          "one shape: error{code,message,param,type}");
    CHECK(j && strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                      "invalid_request_error") == 0,
          "OpenAI's type");
    CHECK(j && strcmp(json_string_value(json_object_get(json_object_get(j, "error"), "param")), "steps") == 0,
          "param");
    json_decref(j);
    free(s);
    srv_error_set(&e, SRV_E_QUEUE_FULL, NULL, "full");
    s = srv_error_json(&e, NULL);
    CHECK(s && strstr(s, "\"param\":null"), "null param");
    free(s);
    CHECK(srv_error_http_status(SRV_E_QUEUE_FULL) == 429 && srv_error_retryable(SRV_E_QUEUE_FULL), "429");
    CHECK(strcmp(srv_error_type(SRV_E_QUEUE_FULL), "rate_limit_error") == 0 &&
              strcmp(srv_error_type(SRV_E_UNAUTHORIZED), "authentication_error") == 0 &&
              strcmp(srv_error_type(SRV_E_ENGINE), "server_error") == 0 &&
              strcmp(srv_error_type(SRV_E_MODEL_NOT_FOUND), "invalid_request_error") == 0,
          "types");
    CHECK(srv_error_http_status(SRV_E_DRAINING) == 503 && srv_error_retryable(SRV_E_DRAINING), "503");
    CHECK(srv_error_http_status(SRV_E_DEADLINE) == 504 && !srv_error_retryable(SRV_E_DEADLINE), "504");
    for (int c = 0; c < SRV_ERR_COUNT; c++)
        CHECK(srv_error_code_name((enum srv_err)c)[0] != '\0' && srv_error_http_status((enum srv_err)c) >= 200,
              "table row %d", c);
}

static void test_metrics(void) {
    srv_metrics_init();
    srv_metrics_batch(3, 0.01);
    srv_metrics_batch(1, 0.01);
    srv_metrics_request_done(0, SRV_OUTCOME_COMPLETED, 2, 0.2);
    srv_metrics_rejection(SRV_E_QUEUE_FULL);
    struct srv_metrics_gauges g = {.queue_depth = 4};
    const char *names[] = {"m\"x"};
    struct srv_buf b;
    srv_buf_init(&b);
    srv_metrics_render(&b, &g, names, 1);
    char *t = srv_buf_steal(&b, NULL);
    CHECK(t && strstr(t, "edm_queue_depth 4\n"), "gauge");
    CHECK(t && strstr(t, "edm_batch_size_bucket{le=\"2\"} 1\n") && strstr(t, "edm_batch_size_bucket{le=\"4\"} 2\n"),
          "cumulative buckets");
    CHECK(t && strstr(t, "edm_denoiser_evaluations_total 4\n"), "evaluations");
    CHECK(t && strstr(t, "edm_images_total{outcome=\"completed\"} 2\n"), "images");
    CHECK(t && strstr(t, "edm_rejections_total{reason=\"queue_full\"} 1\n"), "rejections");
    CHECK(t && strstr(t, "model=\"m\\\"x\""), "label escaping");
    int bad_lines = 0;
    for (char *line = t; line && *line;) {
        char *nl = strchr(line, '\n');
        if (line[0] != '#' && strncmp(line, "edm_", 4) != 0) bad_lines++;
        line = nl ? nl + 1 : NULL;
    }
    CHECK(bad_lines == 0, "every sample named edm_*");
    free(t);
}

int main(void) {
    json_object_seed(1);
    test_bad();
    test_prompt_message();
    test_good();
    test_images();
    test_negotiate();
    test_auth();
    test_base64();
    test_errors();
    test_metrics();
    return check_finish();
}
