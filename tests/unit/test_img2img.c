/*
 * test_img2img.c - starting from an image (edm.h edm_sample_init: init_image, mask,
 * variation_seed; edm_sampler_params: strength, sigma_start, resample_*), without and with a
 * network, and the PNG input path (core/io/png_read.c, image_in.c).
 *
 * Without a network (the analytic denoiser of test_sampler.c, D = s^2/(s^2+sigma^2) x):
 *   - strength -> sigma_start by the documented formula; the step count stays num_steps;
 *     NFE is 2N-1 (Heun) / N (Euler) plus RePaint's reruns, and the samples consume exactly
 *     the plan's NFE;
 *   - x_0 = y + sigma_start n(seed); strength near 0 returns the input;
 *   - the mask guarantee: known pixels (m = 0) end exactly at y, a soft mask blends, a mask
 *     of nothing to repaint returns y with no evaluation;
 *   - reproducibility: same inputs and seed give identical x, whatever else is advanced
 *     in between; variation slerp keeps the norm and its ends are the two seeds;
 *   - validation of the new fields, and the plain path unchanged by them.
 * With the bundled MNIST model (skipped when absent): the same image alone and in a batch
 * with unrelated requests of other plans through edm_denoiser_step is bit-identical.
 * PNG: round trips of 8/16-bit gray and RGB(A) and palette files, channel conversion,
 * resizing of a constant image, SHA-256 known answers, hostile inputs rejected, the caller's
 * max_side (refused from the header, naming the size and the cap; 0 and larger: the default),
 * chunk lengths checked before libpng allocates them (the fuzzer's 89-byte file whose tEXt
 * claims 2 GB, decoded in a child under an address-space limit; ancillary chunks of 1 MiB).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "edm.h"
#include "sampler/sampler.h"

#define SD 0.5
enum { C = 1, R = 8, n = C * R * R };

static void analytic_D(const double *x, double sigma, double *out, size_t m) {
    for (size_t k = 0; k < m; k++) out[k] = x[k] * (SD * SD / (SD * SD + sigma * sigma));
}

static edm_plan *make_plan(const edm_sampler_params *p) {
    edm_plan_net net = {.sigma_min = 0, .sigma_max = INFINITY, .C = C, .R = R, .label_dim = 0};
    edm_plan *plan = NULL;
    edm_error err;
    if (edm_plan_new_custom(p, &net, &plan, &err) != EDM_OK) {
        fprintf(stderr, "plan: %s\n", err.message);
        abort();
    }
    return plan;
}

static void run_to_end(edm_sample *s) {
    double x[n], D[n], sigma;
    while (edm_sample_pending(s)) {
        edm_sample_next_input_f64(s, x, &sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(s, D);
    }
}

static edm_sample *new_sample(const edm_plan *plan, const edm_sample_init *init) {
    edm_sample *s = NULL;
    edm_error err;
    enum edm_status st = edm_sample_new(plan, init, &s, &err);
    CHECK(st == EDM_OK, "edm_sample_new: %s", err.message);
    return s;
}

/* A smooth test image in [-0.9, 0.9]. */
static void make_image(float *y) {
    for (int k = 0; k < n; k++) y[k] = (float)(0.9 * sin(0.7 * k));
}

static void test_strength_mapping(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.strength = 0.5;
    edm_plan *plan = make_plan(&p);
    const double a = pow(0.002, 1 / 7.0), b = pow(80, 1 / 7.0);
    const double want = pow(a + 0.5 * (b - a), 7);
    CHECK(fabs(edm_plan_sigma(plan, 0) - want) < 1e-12 * want, "sigma_start %g, want %g",
          edm_plan_sigma(plan, 0), want);
    CHECK(edm_plan_num_steps(plan) == 18 && edm_plan_nfe(plan) == 35,
          "strength keeps the steps: %d steps, nfe %d", edm_plan_num_steps(plan),
          edm_plan_nfe(plan));
    CHECK(fabs(edm_plan_sigma(plan, 17) - 0.002) < 1e-15 && edm_plan_sigma(plan, 18) == 0,
          "ends at sigma_min, then 0");
    char desc[512];
    edm_plan_describe(plan, desc, sizeof desc);
    CHECK(strstr(desc, " strength=0.5 sigma_start=") != NULL, "describe: %s", desc);
    edm_plan_free(plan);

    p.strength = 1;
    plan = make_plan(&p);
    CHECK(edm_plan_sigma(plan, 0) == 80, "strength 1 is sigma_max: %g", edm_plan_sigma(plan, 0));
    edm_plan_free(plan);

    p.strength = NAN;
    p.sigma_start = 3;
    p.ablation = 1;
    p.solver = EDM_SOLVER_EULER;
    plan = make_plan(&p);
    CHECK(fabs(edm_plan_sigma(plan, 0) - 3) < 1e-12 && edm_plan_nfe(plan) == 18, "sigma_start 3 euler: %g, %d",
          edm_plan_sigma(plan, 0), edm_plan_nfe(plan));
    edm_plan_free(plan);

    /* the plain plan's description is unchanged by the new fields */
    edm_sampler_params_default(&p);
    plan = make_plan(&p);
    edm_plan_describe(plan, desc, sizeof desc);
    CHECK(!strstr(desc, "strength") && !strstr(desc, "sigma_start") && !strstr(desc, "resample"),
          "plain describe: %s", desc);
    edm_plan_free(plan);
}

static void test_validation(void) {
    struct {
        const char *field;
        double strength, sigma_start;
        int jump, count;
    } bad[] = {
        {"strength", 0, NAN, 0, 1},       {"strength", 1.5, NAN, 0, 1},
        {"strength", -0.1, NAN, 0, 1},    {"sigma_start", NAN, 0, 0, 1},
        {"sigma_start", NAN, INFINITY, 0, 1}, {"sigma_start", 0.5, 1, 0, 1},
        {"resample_jump", NAN, NAN, 18, 2}, {"resample_jump", NAN, NAN, -1, 1},
        {"resample_count", NAN, NAN, 2, 0}, {"resample_count", NAN, NAN, 2, 101},
        {"resample_jump", NAN, NAN, 0, 3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        edm_sampler_params p;
        edm_sampler_params_default(&p);
        p.strength = bad[i].strength;
        p.sigma_start = bad[i].sigma_start;
        p.resample_jump = bad[i].jump;
        p.resample_count = bad[i].count;
        edm_error err;
        CHECK(edm_sampler_params_validate(&p, &err) == EDM_EINVAL &&
                  strcmp(err.field, bad[i].field) == 0,
              "case %zu: field '%s', want %s (%s)", i, err.field, bad[i].field, err.message);
    }
    /* sigma_start outside the resolved range is the plan's error */
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.sigma_start = 81;
    edm_plan_net net = {.sigma_min = 0, .sigma_max = INFINITY, .C = C, .R = R};
    edm_plan *plan = NULL;
    edm_error err;
    CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && !plan &&
              strcmp(err.field, "sigma_start") == 0,
          "sigma_start 81 > sigma_max: %s", err.message);
    p.sigma_start = 0.001;
    CHECK(edm_plan_new_custom(&p, &net, &plan, &err) == EDM_EINVAL && !plan,
          "sigma_start below sigma_min accepted");

    /* the samples' own fields */
    edm_sampler_params_default(&p);
    p.strength = 0.3;
    plan = make_plan(&p);
    float y[n], mask[R * R];
    make_image(y);
    edm_sample *s = NULL;
    edm_sample_init init = {.seed = 1, .class_label = -1};
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_EINVAL && !s &&
              strcmp(err.field, "strength") == 0,
          "strength without an init image: %s", err.message);
    init.init_image = y;
    y[5] = 1.5f;
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_EINVAL && !s &&
              strcmp(err.field, "init_image") == 0,
          "init image out of range: %s", err.message);
    make_image(y);
    for (int k = 0; k < R * R; k++) mask[k] = 1;
    mask[3] = NAN;
    init.mask = mask;
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_EINVAL && !s &&
              strcmp(err.field, "mask") == 0,
          "NaN mask: %s", err.message);
    init.mask = NULL;
    init.variation_strength = 2;
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_EINVAL && !s &&
              strcmp(err.field, "variation_strength") == 0,
          "variation_strength 2: %s", err.message);
    init.init_image = NULL;
    init.variation_strength = 0;
    init.mask = mask;
    edm_plan_free(plan);
    edm_sampler_params_default(&p);
    plan = make_plan(&p);
    CHECK(edm_sample_new(plan, &init, &s, &err) == EDM_EINVAL && !s &&
              strcmp(err.field, "mask") == 0,
          "mask without an init image: %s", err.message);
    edm_plan_free(plan);
}

static void test_img2img(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.num_steps = 12;
    p.strength = 0.4;
    edm_plan *plan = make_plan(&p);
    float y[n], lat[n];
    make_image(y);
    edm_rng_normal(9, EDM_RNG_LATENTS, 0, lat, n);
    edm_sample_init init = {.seed = 9, .class_label = -1, .init_image = y};
    edm_sample *s = new_sample(plan, &init);
    const double s0 = edm_plan_sigma(plan, 0);
    int same = 1;
    for (int k = 0; k < n; k++) same &= edm_sample_x(s)[k] == (double)y[k] + s0 * (double)lat[k];
    CHECK(same, "x_0 = y + sigma_start n(seed)");
    run_to_end(s);
    CHECK(edm_sample_nfe_done(s) == 23 && edm_plan_nfe(plan) == 23, "nfe %d of 12 Heun steps",
          edm_sample_nfe_done(s));

    /* reproducible, and independent of what else is advanced in between */
    edm_sample *again = new_sample(plan, &init);
    edm_sample_init other_i = {.seed = 10, .class_label = -1, .init_image = y};
    edm_sample *other = new_sample(plan, &other_i);
    double x[n], D[n], sigma;
    while (edm_sample_pending(again)) {
        edm_sample_next_input_f64(again, x, &sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(again, D);
        if (edm_sample_pending(other)) {
            edm_sample_next_input_f64(other, x, &sigma);
            analytic_D(x, sigma, D, n);
            edm_sample_advance_f64(other, D);
        }
    }
    CHECK(!memcmp(edm_sample_x(s), edm_sample_x(again), sizeof(double) * n),
          "same init image and seed differ");
    edm_sample_free(again);
    edm_sample_free(other);
    edm_sample_free(s);
    edm_plan_free(plan);

    /* strength near 0 returns the input, to within the sigma_min noise it adds (0.002 n,
     * which this analytic denoiser does not remove): one 8-bit level */
    p.strength = 1e-6;
    plan = make_plan(&p);
    s = new_sample(plan, &init);
    run_to_end(s);
    double worst = 0;
    for (int k = 0; k < n; k++) worst = fmax(worst, fabs(edm_sample_x(s)[k] - y[k]));
    CHECK(worst < 0.01, "strength 1e-6 moved the image by %g", worst);
    uint8_t a8[n], b8[n];
    edm_image_to_u8(edm_sample_x(s), C, R, R, a8);
    edm_image_to_u8_f32(y, C, R, R, b8);
    int px = 0;
    for (int k = 0; k < n; k++) px = abs(a8[k] - b8[k]) > px ? abs(a8[k] - b8[k]) : px;
    CHECK(px <= 1, "strength 1e-6: a pixel changed by %d levels", px);
    edm_sample_free(s);
    edm_plan_free(plan);
}

static void test_inpaint(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.num_steps = 10;
    edm_plan *plan = make_plan(&p);
    float y[n], mask[R * R];
    make_image(y);
    for (int k = 0; k < R * R; k++) mask[k] = k >= R * R / 2 ? 1.0f : 0.0f; /* lower half */
    mask[5] = 0.25f;                                                        /* soft */
    edm_sample_init init = {.seed = 3, .class_label = -1, .init_image = y, .mask = mask};
    edm_sample *s = new_sample(plan, &init);
    /* before every evaluation the known region is y + sigma n_v */
    double x[n], D[n], sigma;
    int known_ok = 1, visits = 0;
    float kn[n];
    while (edm_sample_pending(s)) {
        const int stage1 = edm_sample_nfe_done(s) % 2 == 1 && edm_sample_step(s) < 9;
        edm_sample_next_input_f64(s, x, &sigma);
        if (!stage1) edm_rng_normal(3, EDM_RNG_KNOWN_NOISE, (uint32_t)visits++, kn, n);
        for (int k = 0; k < R * R / 2; k++)
            if (k != 5) known_ok &= fabs(x[k] - (y[k] + sigma * kn[k])) <= 1e-12 * (1 + sigma);
        analytic_D(x, sigma, D, n);
        edm_sample_advance_f64(s, D);
    }
    CHECK(known_ok, "known region is y + sigma n_i before every evaluation");
    int exact = 1, moved = 0;
    for (int k = 0; k < R * R / 2; k++)
        if (k != 5) exact &= edm_sample_x(s)[k] == (double)y[k];
    for (int k = R * R / 2; k < n; k++) moved += edm_sample_x(s)[k] != (double)y[k];
    CHECK(exact, "known pixels are exactly the input's");
    CHECK(moved == n / 2, "the masked half was repainted (%d of %d changed)", moved, n / 2);
    CHECK(edm_sample_nfe_done(s) == edm_plan_nfe(plan), "nfe %d", edm_sample_nfe_done(s));
    edm_sample_free(s);

    /* nothing to repaint: the input, no evaluation */
    for (int k = 0; k < R * R; k++) mask[k] = 0;
    s = new_sample(plan, &init);
    CHECK(!edm_sample_pending(s) && edm_sample_nfe_done(s) == 0, "empty mask needs no evaluation");
    int same = 1;
    for (int k = 0; k < n; k++) same &= edm_sample_x(s)[k] == (double)y[k];
    CHECK(same, "empty mask returns the input");
    edm_sample_free(s);
    edm_plan_free(plan);

    /* RePaint: the extra evaluations are counted and consumed, the guarantee holds */
    for (int k = 0; k < R * R; k++) mask[k] = k >= R * R / 2 ? 1.0f : 0.0f;
    p.resample_jump = 3;
    p.resample_count = 4;
    plan = make_plan(&p);
    /* jump points 3, 6, 9 (< 10): each reruns 3 Heun steps 3 more times: 19 + 3*3*3*2 */
    CHECK(edm_plan_nfe(plan) == 19 + 54, "RePaint nfe %d", edm_plan_nfe(plan));
    s = new_sample(plan, &init);
    run_to_end(s);
    CHECK(edm_sample_nfe_done(s) == edm_plan_nfe(plan), "RePaint consumed %d of %d",
          edm_sample_nfe_done(s), edm_plan_nfe(plan));
    exact = 1;
    for (int k = 0; k < R * R / 2; k++) exact &= edm_sample_x(s)[k] == (double)y[k];
    CHECK(exact, "RePaint: known pixels exact");
    edm_sample *again = new_sample(plan, &init);
    run_to_end(again);
    CHECK(!memcmp(edm_sample_x(s), edm_sample_x(again), sizeof(double) * n), "RePaint repeatable");
    edm_sample_init plain_i = {.seed = 3, .class_label = -1}; /* no mask: resamples too */
    edm_sample *plain = new_sample(plan, &plain_i);
    run_to_end(plain);
    CHECK(edm_sample_nfe_done(plain) == edm_plan_nfe(plan), "RePaint without a mask: %d of %d",
          edm_sample_nfe_done(plain), edm_plan_nfe(plan));
    edm_sample_free(plain);
    char desc[512];
    edm_plan_describe(plan, desc, sizeof desc);
    CHECK(strstr(desc, "nfe=73") && strstr(desc, "resample_jump=3 resample_count=4"), "%s", desc);
    edm_sample_free(again);
    edm_sample_free(s);
    edm_plan_free(plan);
}

static void test_variations(void) {
    float a[n], b[n], m[n];
    edm_rng_normal(1, EDM_RNG_LATENTS, 0, a, n);
    edm_rng_normal(2, EDM_RNG_LATENTS, 0, b, n);
    double na = 0, nb = 0, nm = 0, nl = 0;
    edm_latents_slerp(a, b, n, 0.5, m);
    for (int k = 0; k < n; k++) {
        na += (double)a[k] * a[k], nb += (double)b[k] * b[k], nm += (double)m[k] * m[k];
        double l = 0.5 * a[k] + 0.5 * b[k];
        nl += l * l;
    }
    const double expect = 0.5 * (sqrt(na) + sqrt(nb));
    CHECK(fabs(sqrt(nm) - expect) < 0.1 * expect, "slerp keeps the norm: %g vs %g", sqrt(nm), expect);
    CHECK(sqrt(nl) < 0.85 * expect, "(a linear mix shrinks it: %g)", sqrt(nl));

    edm_sampler_params p;
    edm_sampler_params_default(&p);
    p.num_steps = 6;
    edm_plan *plan = make_plan(&p);
    edm_sample_init i0 = {.seed = 1, .class_label = -1, .variation_seed = 2, .variation_strength = 0};
    edm_sample_init i1 = i0, ib = {.seed = 2, .class_label = -1};
    i1.variation_strength = 1;
    edm_sample *s0 = new_sample(plan, &i0), *s1 = new_sample(plan, &i1), *sb = new_sample(plan, &ib);
    int same = 1;
    for (int k = 0; k < n; k++) same &= edm_sample_x(s0)[k] == (double)a[k] * 80;
    CHECK(same, "variation strength 0 is the seed's latents");
    double worst = 0;
    for (int k = 0; k < n; k++) worst = fmax(worst, fabs(edm_sample_x(s1)[k] - edm_sample_x(sb)[k]));
    CHECK(worst < 1e-4, "variation strength 1 is the variation seed's latents (%g)", worst);
    edm_sample_free(s0);
    edm_sample_free(s1);
    edm_sample_free(sb);
    edm_plan_free(plan);
}

/* The same img2img / inpainting image alone and batched with unrelated requests of other
 * plans, through the real network (the bundled MNIST model) and edm_denoiser_step. */
static void test_batched_model(void) {
    edm_model *model = NULL;
    edm_backend *backend = NULL;
    edm_denoiser *den = NULL;
    edm_error err;
    edm_backend_options bo;
    edm_backend_options_default(&bo);
    bo.name = "cpu";
    if (edm_model_load("models/mnist-edm.safetensors", &model, &err) != EDM_OK) {
        SKIP("models/mnist-edm.safetensors: %s", err.message);
        return;
    }
    if (edm_backend_new(&bo, &backend, &err) != EDM_OK ||
        edm_denoiser_new(model, backend, 4, &den, &err) != EDM_OK) {
        CHECK(0, "backend: %s", err.message);
        goto done;
    }
    enum { M = 32 * 32 };
    float y[M], mask[M];
    for (int k = 0; k < M; k++) {
        y[k] = (float)(((k / 32) / 4 + (k % 32) / 4) % 2 ? 0.8 : -0.8);
        mask[k] = k >= M / 2;
    }
    edm_sampler_params p1, p2;
    edm_sampler_params_default(&p1);
    p1.num_steps = 4;
    p1.strength = 0.6;
    edm_sampler_params_default(&p2);
    p2.num_steps = 3;
    edm_plan *plan1 = NULL, *plan2 = NULL;
    if (edm_plan_new(model, &p1, &plan1, &err) || edm_plan_new(model, &p2, &plan2, &err)) {
        CHECK(0, "plan: %s", err.message);
        goto done;
    }
    edm_sample_init ti = {.seed = 5, .class_label = 3, .init_image = y, .mask = mask};
    edm_sample *alone = new_sample(plan1, &ti);
    int evaluated;
    while (edm_denoiser_step(den, &alone, 1, &evaluated, &err) == EDM_OK && evaluated) {}
    edm_sample *batch[4];
    edm_sample_init u1 = {.seed = 77, .class_label = -1};
    edm_sample_init u2 = {.seed = 5, .class_label = 7, .init_image = y}; /* img2img, no mask */
    batch[0] = new_sample(plan2, &u1);
    batch[1] = new_sample(plan1, &u2);
    batch[2] = new_sample(plan1, &ti);
    batch[3] = new_sample(plan2, &u1);
    while (edm_denoiser_step(den, batch, 4, &evaluated, &err) == EDM_OK && evaluated) {}
    CHECK(edm_sample_status(batch[2], &err) == EDM_OK && !edm_sample_pending(batch[2]), "%s",
          err.message);
    /* The sampler adds nothing batch-dependent; the CPU GEMM's blocking depends on the
     * batch size, so the network's output may differ in its last bits (as for plain
     * sampling: tests/server/test_batching.sh). Same batch twice: bit-identical. */
    double worst = 0;
    for (int k = 0; k < M; k++)
        worst = fmax(worst, fabs(edm_sample_x(alone)[k] - edm_sample_x(batch[2])[k]));
    CHECK(worst < 1e-4, "inpainting alone and batched with unrelated requests differ by %g", worst);
    printf("inpainting alone vs batched with unrelated requests: max |diff| %.3g\n", worst);
    edm_sample *again[4];
    again[0] = new_sample(plan2, &u1);
    again[1] = new_sample(plan1, &u2);
    again[2] = new_sample(plan1, &ti);
    again[3] = new_sample(plan2, &u1);
    while (edm_denoiser_step(den, again, 4, &evaluated, &err) == EDM_OK && evaluated) {}
    int same = 1;
    for (int j = 0; j < 4; j++)
        same &= !memcmp(edm_sample_x(again[j]), edm_sample_x(batch[j]), sizeof(double) * M);
    CHECK(same, "the same batch twice differs");
    for (int j = 0; j < 4; j++) edm_sample_free(again[j]);
    CHECK(edm_sample_nfe_done(batch[2]) == 7 && edm_sample_nfe_done(batch[0]) == 5,
          "nfe %d, %d", edm_sample_nfe_done(batch[2]), edm_sample_nfe_done(batch[0]));
    int exact = 1;
    for (int k = 0; k < M / 2; k++) exact &= edm_sample_x(alone)[k] == (double)y[k];
    CHECK(exact, "model: known pixels exact");
    edm_sample_free(alone);
    for (int j = 0; j < 4; j++) edm_sample_free(batch[j]);
done:
    edm_plan_free(plan1);
    edm_plan_free(plan2);
    edm_denoiser_free(den);
    edm_backend_free(backend);
    edm_model_free(model);
}

static int read_all(const char *path, uint8_t **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    *buf = malloc(1 << 16);
    *len = fread(*buf, 1, 1 << 16, f);
    fclose(f);
    return 0;
}

/* Decodes tests/fuzz/corpus_png/NAME.png; 0 when missing or refused (counted as a failure). */
static int decode_corpus(const char *name, edm_png_image *img) {
    char path[256];
    snprintf(path, sizeof path, "tests/fuzz/corpus_png/%s.png", name);
    uint8_t *buf = NULL;
    size_t len = 0;
    edm_error err;
    if (read_all(path, &buf, &len)) {
        CHECK(0, "cannot read %s", path);
        return 0;
    }
    enum edm_status st = edm_png_decode(buf, len, 0, img, &err);
    free(buf);
    CHECK(st == EDM_OK, "%s: %s", path, err.message);
    return st == EDM_OK;
}

static void test_png_decode(void) {
    edm_png_image img;
    if (decode_corpus("ok_gray8", &img)) {
        int ok = img.W == 4 && img.H == 3 && img.C == 1;
        for (int y = 0; ok && y < 3; y++)
            for (int x = 0; x < 4; x++) ok &= img.data[y * 4 + x] == (float)(((x * 37 + y * 11) & 255) / 255.0);
        CHECK(ok, "gray8 values");
        /* as an init image: 2 u - 1, and back to the same bytes */
        float *init = malloc(3 * 4 * 4 * sizeof *init);
        edm_png_image sq = img;
        sq.W = sq.H = 3; /* the 3x3 corner, same size: no resampling */
        float corner[9];
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++) corner[y * 3 + x] = img.data[y * 4 + x];
        sq.data = corner;
        edm_error err;
        CHECK(edm_png_to_init_image(&sq, 3, 3, init, &err) == EDM_OK, "%s", err.message);
        uint8_t back[27];
        edm_image_to_u8_f32(init, 3, 3, 3, back);
        int same = 1;
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                for (int c = 0; c < 3; c++)
                    same &= back[(y * 3 + x) * 3 + c] == ((x * 37 + y * 11) & 255);
        CHECK(same, "8-bit gray -> RGB init image -> uint8 gives the same bytes");
        free(init);
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_gray16", &img)) {
        CHECK(img.C == 1 && img.data[0] == 0 && img.data[1] == 1 &&
                  img.data[2] == (float)(32768 / 65535.0) && img.data[3] == (float)(1 / 65535.0),
              "gray16 values %g %g %g %g", img.data[0], img.data[1], img.data[2], img.data[3]);
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_gray1", &img)) { /* 0xa5 = 10100101 */
        static const float want[8] = {1, 0, 1, 0, 0, 1, 0, 1};
        CHECK(img.W == 8 && !memcmp(img.data, want, sizeof want), "gray1 bits");
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_palette", &img)) { /* red, green, blue */
        CHECK(img.C == 3 && img.W == 3 && img.data[0] == 1 && img.data[1] == 0 &&
                  img.data[3 + 1] == 1 && img.data[6 + 2] == 1,
              "palette -> RGB");
        float lum[9];
        edm_error err;
        edm_png_image one = img;
        one.W = 1, one.H = 1;
        float px[3] = {1, 0, 0};
        one.data = px;
        CHECK(edm_png_to_mask(&one, 1, lum, &err) == EDM_OK && fabsf(lum[0] - 0.299f) < 1e-6f,
              "luminance of red %g", lum[0]);
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_rgba8", &img)) { /* (10,20,30) alpha 0, (40,50,60) alpha 255 */
        CHECK(img.C == 3 && img.data[0] == 10 / 255.0f && img.data[2] == 20 / 255.0f &&
                  img.data[4] == 30 / 255.0f,
              "RGBA: the colour as stored");
        CHECK(img.alpha && img.alpha[0] == 0 && img.alpha[1] == 1, "RGBA: alpha apart");
        CHECK(edm_png_transparent(&img), "RGBA with alpha 0: transparent");
        /* a mask with transparent pixels: 1 - alpha (OpenAI's convention), not the colour */
        float m[4];
        edm_error err;
        edm_png_image row = img;
        row.H = 1, row.W = 2;
        CHECK(edm_png_to_mask(&row, 1, m, &err) == EDM_OK && fabsf(m[0] - 0.5f) < 1e-6f,
              "mask of alpha 0 and 255 shrunk to one pixel: %g", m[0]);
        float opaque[2] = {1, 1}, *alpha = img.alpha;
        img.alpha = opaque; /* opaque RGBA (a canvas export): the colour counts */
        CHECK(!edm_png_transparent(&img), "opaque RGBA: not transparent");
        float lum[6];
        CHECK(edm_png_to_mask(&img, 2, lum, &err) == EDM_OK &&
                  fabsf(lum[0] - (float)((0.299 * 10 + 0.587 * 20 + 0.114 * 30) / 255)) < 1e-6f,
              "opaque RGBA mask by luminance: %g", lum[0]);
        img.alpha = alpha;
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_graya8", &img)) { /* gray 100 alpha 0, gray 200 alpha 255 */
        CHECK(img.C == 1 && img.data[0] == 100 / 255.0f && img.alpha && img.alpha[0] == 0 &&
                  img.alpha[1] == 1,
              "gray+alpha");
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_palette_trns", &img)) { /* entry 0 transparent (tRNS), entry 1 opaque */
        CHECK(img.alpha && img.alpha[0] == 0 && img.alpha[1] == 1, "tRNS -> alpha");
        edm_png_image_clear(&img);
    }
    if (decode_corpus("ok_gray8", &img)) {
        CHECK(!img.alpha && !edm_png_transparent(&img), "no alpha: NULL");
        edm_png_image_clear(&img);
    }
    /* every truncated prefix of a valid file is refused cleanly */
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_all("tests/fuzz/corpus_png/ok_32x32.png", &buf, &len) == 0) {
        int refused = 1;
        for (size_t cut = 0; cut < len - 12; cut++) { /* IEND is the last 12 bytes */
            edm_error err;
            refused &= edm_png_decode(buf, cut, 0, &img, &err) == EDM_EFORMAT && !img.data;
        }
        CHECK(refused, "a truncated PNG was accepted");
        free(buf);
    }
}

/* Decodes png with max_side; whether it is refused as past the side limit, with a message
 * that names want (the size and the limit) and nothing allocated. */
static int refused_as_too_large(const uint8_t *png, size_t len, size_t max_side, const char *want) {
    edm_png_image img;
    edm_error err;
    enum edm_status st = edm_png_decode(png, len, max_side, &img, &err);
    int ok = st == EDM_EFORMAT && !img.data && !img.alpha && img.W == 0 &&
             !strcmp(err.field, "max_side") && strstr(err.message, want);
    if (!ok)
        fprintf(stderr, "max_side %zu: status %d, field '%s', message '%s'\n", max_side, st,
                err.field, err.message);
    edm_png_image_clear(&img);
    return ok;
}

/* edm_png_decode's max_side: the caller's cap, refused from the header with the size and the
 * cap in the message; 0 the engine's default, more than EDM_PNG_MAX_SIDE clamped to it. */
static void test_png_max_side(void) {
    uint8_t hwc[40 * 30];
    for (int k = 0; k < 40 * 30; k++) hwc[k] = (uint8_t)(k * 7);
    for (int tall = 0; tall < 2; tall++) { /* 40x30, then 30x40: each side alone past 32 */
        const int W = tall ? 30 : 40, H = tall ? 40 : 30;
        uint8_t *png = NULL;
        size_t len = 0;
        edm_error err;
        if (edm_png_encode(hwc, W, H, 1, NULL, NULL, 0, 6, &png, &len, &err) != EDM_OK) {
            CHECK(0, "edm_png_encode: %s", err.message);
            return;
        }
        char want[64];
        snprintf(want, sizeof want, "%dx%d pixels: at most 32 a side", W, H);
        CHECK(refused_as_too_large(png, len, 32, want), "%dx%d refused with max_side 32", W, H);
        CHECK(refused_as_too_large(png, len, 39, "at most 39 a side"), "%dx%d, max_side 39", W, H);
        static const size_t accepting[] = {
            40, 41, 0, EDM_PNG_MAX_SIDE, (size_t)EDM_PNG_MAX_SIDE + 1, SIZE_MAX};
        for (size_t i = 0; i < sizeof accepting / sizeof *accepting; i++) {
            edm_png_image img;
            enum edm_status st = edm_png_decode(png, len, accepting[i], &img, &err);
            CHECK(st == EDM_OK && img.W == W && img.H == H && img.data[1] == 7 / 255.0f,
                  "%dx%d with max_side %zu: %s", W, H, accepting[i], err.message);
            edm_png_image_clear(&img);
        }
        free(png);
    }
    /* A header alone (IHDR of 2000x8, then IEND: the server's test file): refused as too large
     * before libpng reads on, so the message still has the size (libpng itself only says
     * "Invalid IHDR data"); under the default limit it is a file without pixels. */
    static const uint8_t wide[] = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x00, 0x08, 0x08, 0x00, 0x00, 0x00, 0x00, 0x84,
        0x99, 0x3b, 0x69, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
    CHECK(refused_as_too_large(wide, sizeof wide, 1024, "2000x8 pixels: at most 1024 a side"),
          "a 2000x8 header with max_side 1024");
    edm_png_image img;
    edm_error err;
    CHECK(edm_png_decode(wide, sizeof wide, 0, &img, &err) == EDM_EFORMAT && !img.data &&
              strcmp(err.field, "max_side") != 0,
          "a 2000x8 header within the default limit: refused as malformed, %s", err.message);
}

/* Under ASan the shadow memory needs address space past any small limit (gcc's macro, clang's
 * feature). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* In a forked child: the address space limited to what the process maps now plus 256 MiB
 * (not under ASan), bad_chunk_length.png decoded. Exits 0 only for EDM_EFORMAT naming the
 * tEXt chunk, its claimed length and the bytes left. Before png_read.c walked the chunks,
 * libpng allocated and zeroed the claimed 0x79000006 bytes (2 GB); under the limit that
 * allocation fails, libpng reads on and refuses the file for another reason (status 3,
 * "[00][31][D8]U: invalid chunk type"), so the child exits 1. */
static void decode_bad_chunk_length_in_child(const uint8_t *png, size_t len) {
    long pages = 0;
    FILE *statm = fopen("/proc/self/statm", "r");
    if (!statm || fscanf(statm, "%ld", &pages) != 1) _exit(3);
    fclose(statm);
    const rlim_t cap = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
    const struct rlimit lim = {cap, cap};
    if (!UNDER_ASAN && setrlimit(RLIMIT_AS, &lim)) _exit(4);
    edm_png_image img;
    edm_error err;
    const enum edm_status st = edm_png_decode(png, len, 0, &img, &err);
    const int ok = st == EDM_EFORMAT && !img.data &&
                   strstr(err.message, "chunk tEXt claims 2030043142 bytes, 48 remain");
    if (!ok) fprintf(stderr, "bad_chunk_length.png: status %d, message '%s'\n", st, err.message);
    _exit(ok ? 0 : 1);
}

/* The chunk lengths, checked against the input before libpng allocates them. */
static void test_png_chunk_lengths(void) {
    uint8_t *bad = NULL, *text = NULL;
    size_t bad_len = 0, text_len = 0;
    if (read_all("tests/fuzz/corpus_png/bad_chunk_length.png", &bad, &bad_len) ||
        read_all("tests/fuzz/corpus_png/ok_text.png", &text, &text_len)) {
        CHECK(0, "cannot read bad_chunk_length.png and ok_text.png");
        free(bad);
        return;
    }
    fflush(NULL);
    const pid_t pid = fork();
    if (pid == 0) decode_bad_chunk_length_in_child(bad, bad_len);
    int ws = 0;
    const int waited = pid > 0 && waitpid(pid, &ws, 0) == pid;
    CHECK(waited && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
          "a tEXt claiming 2030043142 bytes, with 256 MiB more address space: child %s, "
          "wait status %#x",
          waited ? "waited" : "not run", (unsigned)ws);
    free(bad);

    /* ok_text (sig, IHDR to byte 33, tEXt "seed\0" "1", IDAT, IEND) with a tEXt of size bytes:
     * 1 MiB, the limit for an ancillary chunk, is decoded; one byte more refused */
    static const size_t sizes[] = {1u << 20, (1u << 20) + 1};
    for (int i = 0; i < 2; i++) {
        const size_t size = sizes[i], tail = text_len - 51; /* from the IDAT on */
        uint8_t *png = malloc(text_len - 6 + size);
        if (!png) {
            CHECK(0, "out of memory for a PNG of %zu bytes", text_len - 6 + size);
            break;
        }
        memcpy(png, text, 41); /* up to the tEXt's data: IHDR, length (patched) and type */
        for (int k = 0; k < 4; k++) png[33 + k] = (uint8_t)(size >> (24 - 8 * k));
        memcpy(png + 41, "seed", 5);
        memset(png + 46, 'x', size - 5);
        const uLong crc = crc32(0, png + 37, (uInt)(4 + size));
        for (int k = 0; k < 4; k++) png[41 + size + k] = (uint8_t)(crc >> (24 - 8 * k));
        memcpy(png + 45 + size, text + 51, tail);
        edm_png_image img;
        edm_error err;
        const enum edm_status st = edm_png_decode(png, 45 + size + tail, 0, &img, &err);
        if (i == 0)
            CHECK(st == EDM_OK && img.W == 2 && img.H == 2, "a tEXt of 1 MiB: %s", err.message);
        else
            CHECK(st == EDM_EFORMAT && !img.data &&
                      strstr(err.message, "ancillary chunk tEXt of 1048577 bytes: at most 1048576"),
                  "a tEXt of 1 MiB + 1: status %d, %s", st, err.message);
        edm_png_image_clear(&img);
        free(png);
    }
    free(text);
}

static void test_resize_sha(void) {
    /* a constant image stays constant; a 2x2 checker shrinks to its mean */
    float src[3 * 5 * 7], dst[3 * 4 * 4];
    for (int k = 0; k < 3 * 5 * 7; k++) src[k] = 0.25f * (float)(k / 35);
    edm_image_resize(src, 3, 5, 7, 4, dst);
    int flat = 1;
    for (int k = 0; k < 48; k++) flat &= fabsf(dst[k] - 0.25f * (float)(k / 16)) < 1e-6f;
    CHECK(flat, "resizing a constant image keeps it");
    float chk[4 * 4], one[1];
    for (int k = 0; k < 16; k++) chk[k] = (float)(((k / 4) + (k % 4)) % 2);
    edm_image_resize(chk, 1, 4, 4, 1, one);
    CHECK(fabsf(one[0] - 0.5f) < 1e-6f, "4x4 checker -> 1x1 is the mean: %g", one[0]);
    char hex[65];
    edm_sha256_hex((const uint8_t *)"abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "%s", hex);
    edm_sha256_hex((const uint8_t *)"", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "%s", hex);
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    edm_sha256_hex((const uint8_t *)m, strlen(m), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "%s", hex);
}

/* The Request JSON of a start from an image: the optional rows while in effect (the
 * sigma_start given, not both), the inputs' hashes and a variation; none of it otherwise. */
static void test_record(void) {
    edm_sampler_params p;
    edm_sampler_params_default(&p);
    char json[2048];
    edm_record rec = {.model = "m", .model_sha256 = "00", .seed = 7, .class_label = -1};
    edm_plan *plan = make_plan(&p);
    edm_plan_record_json(plan, &rec, json, sizeof json);
    CHECK(!strstr(json, "strength") && !strstr(json, "sigma_start") && !strstr(json, "resample") &&
              !strstr(json, "sha256\":\"\"") && !strstr(json, "variation"),
          "plain Request: %s", json);
    edm_plan_free(plan);

    p.strength = 0.25, p.resample_jump = 3, p.resample_count = 2;
    plan = make_plan(&p);
    rec.init_image_sha256 = "aa", rec.mask_sha256 = "bb";
    rec.variation_seed = 9, rec.variation_strength = 0.125;
    edm_plan_record_json(plan, &rec, json, sizeof json);
    CHECK(strstr(json, "\"strength\":0.25,\"resample_jump\":3,\"resample_count\":2,"
                       "\"init_image_sha256\":\"aa\",\"mask_sha256\":\"bb\",\"variation_seed\":9,"
                       "\"variation_strength\":0.125,\"nfe\":") &&
              !strstr(json, "sigma_start"),
          "Request from an image: %s", json);
    char desc[512];
    edm_plan_describe(plan, desc, sizeof desc);
    CHECK(strstr(desc, " strength=0.25 sigma_start=") && strstr(desc, "resample_jump=3 resample_count=2"),
          "describe: %s", desc);
    edm_plan_free(plan);

    p.strength = NAN, p.sigma_start = 2.5, p.resample_count = 1; /* jump alone: not resampling */
    plan = make_plan(&p);
    edm_plan_record_json(plan, &rec, json, sizeof json);
    CHECK(strstr(json, "\"sigma_start\":2.5,") && !strstr(json, "\"strength\"") && !strstr(json, "resample"),
          "Request with sigma_start: %s", json);
    edm_plan_free(plan);
}

int main(void) {
    test_record();
    test_png_decode();
    test_png_max_side();
    test_png_chunk_lengths();
    test_resize_sha();
    test_strength_mapping();
    test_validation();
    test_img2img();
    test_inpaint();
    test_variations();
    test_batched_model();
    return check_finish();
}
