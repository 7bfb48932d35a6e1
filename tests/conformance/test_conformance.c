/*
 * test_conformance.c - the engine against vectors made by the official implementation.
 *
 * For every case directory under tests/vectors (tools/refgen/make_vectors.py made them):
 *  - denoise cases (D.npy): D(x; sigma) of the model file on the CPU backend, with labels,
 *    without labels (D_nolabels.npy) and without augment labels (D_noaug.npy) where present;
 *    relative error per image against the official output.
 *  - sampler cases (params.json): the EDM or ablation sampler with the official latents and
 *    per-step noise, through the same per-image state machines and batched step the daemon
 *    uses; the final x against x.npy and the uint8 image against u8.npy.
 * With EDM_TEST_BACKEND=cuda (and a GPU) the same checks run on the CUDA backend.
 */
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "edm.h"

#define D_TOL 1e-4  /* per image, relative to the image's max |D| (issue: 1e-4 per image) */
#define X_TOL 5e-4  /* whole sampler runs */

static const char *vec_dir = "tests/vectors";
static edm_backend *backend;

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static int load(const char *dir, const char *name, edm_npy *a) {
    char path[1024];
    edm_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!exists(path)) return 0;
    if (edm_npy_read(path, a, &err)) {
        CHECK(0, "%s: %s", path, err.message);
        return 0;
    }
    return 1;
}

/* Max over images of max|a-b| / max|b| within the image. */
static double per_image_rel(const float *a, const float *b, int n, long per) {
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double r = check_max_rel(a + i * per, b + i * per, per);
        if (r > worst || r != r) worst = r != r ? INFINITY : r;
    }
    return worst;
}

static void denoise_case(const char *dir, const char *name) {
    char path[1024];
    edm_error err;
    edm_model *model = NULL;
    edm_denoiser *den = NULL;
    edm_npy x = {0}, sigma = {0}, labels = {0}, aug = {0}, ref = {0};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (edm_model_load(path, &model, &err)) {
        CHECK(0, "%s: load: %s", name, err.message);
        return;
    }
    if (!load(dir, "x.npy", &x) || !load(dir, "sigma.npy", &sigma)) {
        CHECK(0, "%s: x.npy/sigma.npy missing", name);
        goto done;
    }
    load(dir, "labels.npy", &labels);
    load(dir, "augment.npy", &aug);
    int n = (int)x.shape[0];
    long per = (long)(edm_npy_numel(&x) / n);
    double *s = malloc(sizeof(double) * (size_t)n);
    float *out = malloc(sizeof(float) * (size_t)edm_npy_numel(&x));
    for (int i = 0; i < n; i++) s[i] = sigma.data[i];
    if (edm_denoiser_new(model, backend, n, &den, &err)) {
        CHECK(0, "%s: denoiser: %s", name, err.message);
        goto free_bufs;
    }
    static const struct {
        const char *file;
        int labels, aug;
    } variants[] = {{"D.npy", 1, 1}, {"D_nolabels.npy", 0, 1}, {"D_noaug.npy", 1, 0}};
    for (int v = 0; v < 3; v++) {
        if (!load(dir, variants[v].file, &ref)) continue;
        const float *lab = variants[v].labels && labels.data ? labels.data : NULL;
        const float *au = variants[v].aug && aug.data ? aug.data : NULL;
        for (long k = 0; k < edm_npy_numel(&x); k++) out[k] = NAN;
        if (edm_denoiser_eval(den, n, x.data, s, lab, au, out, &err)) {
            CHECK(0, "%s/%s: eval: %s", name, variants[v].file, err.message);
        } else {
            double r = per_image_rel(out, ref.data, n, per);
            CHECK(r < D_TOL, "%s/%s: max relative error %.3g (tolerance %g)", name,
                  variants[v].file, r, D_TOL);
            printf("  %-34s %-15s rel err %.2e\n", name, variants[v].file, r);
        }
        edm_npy_clear(&ref);
    }
free_bufs:
    free(s);
    free(out);
done:
    edm_denoiser_free(den);
    edm_npy_clear(&x);
    edm_npy_clear(&sigma);
    edm_npy_clear(&labels);
    edm_npy_clear(&aug);
    edm_model_free(model);
}

static const char *str(json_t *o, const char *k) {
    json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The generate.py arguments of a case (params.json: its keywords, num_steps and
 * discretization, or the table's names; "inf" for S_max) through the parameter table;
 * ablation-only ones for ablation cases only. 0 when a value is refused. */
static int sampler_params(json_t *p, edm_sampler_params *sp) {
    edm_sampler_params_default(sp);
    const char *sampler = str(p, "sampler");
    const int ablation = sampler && strcmp(sampler, "ablation") == 0;
    for (int i = 0; i < EDM_SAMPLER_PARAM_COUNT; i++) {
        const edm_sampler_param *d = &edm_sampler_param_table[i];
        json_t *v = d->alias ? json_object_get(p, d->alias) : NULL;
        if (!v) v = json_object_get(p, d->name);
        if (!v || json_is_null(v) || (d->ablation_only && !ablation)) continue;
        enum edm_status st = EDM_EINVAL;
        if (json_is_string(v)) st = edm_sampler_param_parse(sp, d, json_string_value(v), NULL);
        else if (json_is_number(v) && d->type != EDM_PARAM_CHOICE)
            st = edm_sampler_param_set(sp, d, json_number_value(v), NULL);
        if (st != EDM_OK) return 0;
    }
    sp->ablation = ablation;
    return 1;
}

static void sample_case(const char *dir, const char *name) {
    char path[1024];
    edm_error err;
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/params.json", dir);
    json_t *params = json_load_file(path, 0, &jerr);
    if (!params) {
        CHECK(0, "%s: params.json: %s", name, jerr.text);
        return;
    }
    /* The model: this directory's, or the case named by "model". */
    const char *model_case = str(params, "model");
    if (model_case) snprintf(path, sizeof path, "%s/%s/model.safetensors", vec_dir, model_case);
    else snprintf(path, sizeof path, "%s/model.safetensors", dir);
    edm_model *model = NULL;
    edm_denoiser *den = NULL;
    edm_plan *plan = NULL;
    edm_sample **samples = NULL;
    float *noise = NULL;
    edm_npy lat = {0}, eps = {0}, labels = {0}, ref = {0}, u8 = {0};
    edm_sampler_params sp;
    if (!sampler_params(params, &sp)) {
        CHECK(0, "%s: bad sampler names in params.json", name);
        goto done;
    }
    if (edm_model_load(path, &model, &err)) {
        CHECK(0, "%s: load: %s", name, err.message);
        goto done;
    }
    if (!load(dir, "latents.npy", &lat) || !load(dir, "noise.npy", &eps) ||
        !load(dir, "x.npy", &ref)) {
        CHECK(0, "%s: latents/noise/x missing", name);
        goto done;
    }
    load(dir, "labels.npy", &labels);
    load(dir, "u8.npy", &u8);
    const edm_config *cfg = edm_model_config(model);
    int n = (int)lat.shape[0], steps = sp.num_steps;
    long per = (long)(edm_npy_numel(&lat) / n);
    if (eps.ndim != 5 || eps.shape[0] != steps || eps.shape[1] != n) {
        CHECK(0, "%s: noise.npy shape does not match %d steps x %d images", name, steps, n);
        goto done;
    }
    if (edm_plan_new(model, &sp, &plan, &err)) {
        CHECK(0, "%s: plan: %s", name, err.message);
        goto done;
    }
    /* Per image: its steps' noise contiguous, [N][steps][C,R,R]. */
    noise = malloc(sizeof(float) * (size_t)edm_npy_numel(&eps));
    for (int i = 0; i < n; i++)
        for (int s = 0; s < steps; s++)
            memcpy(noise + ((size_t)i * steps + s) * per, eps.data + ((size_t)s * n + i) * per,
                   sizeof(float) * (size_t)per);
    samples = calloc((size_t)n, sizeof *samples);
    for (int i = 0; i < n; i++) {
        edm_sample_init init = {.seed = (uint64_t)i, .class_label = -1,
                                .latents = lat.data + (size_t)i * per,
                                .noise = noise + (size_t)i * steps * per};
        if (cfg->label_dim && labels.data) {
            int best = 0;
            for (int k = 1; k < cfg->label_dim; k++)
                if (labels.data[(size_t)i * cfg->label_dim + k] >
                    labels.data[(size_t)i * cfg->label_dim + best])
                    best = k;
            init.class_label = best;
        }
        if (edm_sample_new(plan, &init, &samples[i], &err)) {
            CHECK(0, "%s: sample: %s", name, err.message);
            goto done;
        }
    }
    /* Batch 2 < n where possible, so that images at different stages share evaluations. */
    if (edm_denoiser_new(model, backend, n > 2 ? 2 : n, &den, &err)) {
        CHECK(0, "%s: denoiser: %s", name, err.message);
        goto done;
    }
    int evals = 0, guard = 0;
    for (;;) {
        int k = 0;
        if (edm_denoiser_step(den, samples, n, &k, &err)) {
            CHECK(0, "%s: step: %s", name, err.message);
            goto done;
        }
        if (k == 0 || ++guard > 100000) break;
        evals += k;
    }
    CHECK(evals == n * edm_plan_nfe(plan), "%s: %d evaluations, expected %d x %d", name, evals, n,
          edm_plan_nfe(plan));
    float *x = malloc(sizeof(float) * (size_t)edm_npy_numel(&lat));
    uint8_t *img = malloc((size_t)per);
    int u8_bad = 0;
    long u8_total = 0;
    for (int i = 0; i < n; i++) {
        const double *xi = edm_sample_x(samples[i]);
        for (long k = 0; k < per; k++) x[(size_t)i * per + k] = (float)xi[k];
        if (u8.data) {
            edm_image_to_u8(xi, cfg->img_channels, cfg->img_resolution, cfg->img_resolution, img);
            for (long k = 0; k < per; k++, u8_total++)
                u8_bad += abs((int)img[k] - (int)u8.data[(size_t)i * per + k]) > 0;
        }
    }
    double r = per_image_rel(x, ref.data, n, per);
    CHECK(r < X_TOL, "%s: final x max relative error %.3g (tolerance %g)", name, r, X_TOL);
    printf("  %-34s sampler x rel err %.2e, uint8 pixels differing %d/%ld\n", name, r, u8_bad,
           u8_total);
    /* fp32 network noise may flip a rounding boundary on a rare pixel, never more than that. */
    if (u8.data) CHECK(u8_bad <= u8_total / 1000 + 1, "%s: %d uint8 pixels differ", name, u8_bad);
    free(x);
    free(img);
done:
    if (samples)
        for (int i = 0; i < n; i++) edm_sample_free(samples[i]);
    free(samples);
    free(noise);
    edm_denoiser_free(den);
    edm_plan_free(plan);
    edm_model_free(model);
    edm_npy_clear(&lat);
    edm_npy_clear(&eps);
    edm_npy_clear(&labels);
    edm_npy_clear(&ref);
    edm_npy_clear(&u8);
    json_decref(params);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int main(int argc, char **argv) {
    if (argc > 1) vec_dir = argv[1];
    edm_backend_options opts;
    edm_backend_options_default(&opts);
    /* EDM_TEST_BACKEND names any registry backend (default cpu). */
    opts.name = getenv("EDM_TEST_BACKEND") ? getenv("EDM_TEST_BACKEND") : "cpu";
    edm_backend_info bi;
    if (edm_backend_lookup(opts.name, &bi, NULL) != EDM_OK || bi.devices == 0) {
        SKIP("EDM_TEST_BACKEND=%s but it has no usable device", opts.name);
        return check_finish();
    }
    edm_error err;
    if (edm_backend_new(&opts, &backend, &err)) {
        CHECK(0, "backend: %s", err.message);
        return check_finish();
    }
    printf("backend: %s\n", edm_backend_describe(backend));
    DIR *d = opendir(vec_dir);
    if (!d) {
        CHECK(0, "cannot open %s", vec_dir);
        return check_finish();
    }
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 256)
        if (e->d_name[0] != '.') names[count++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)count, sizeof *names, cmp_str);
    int cases = 0;
    for (int i = 0; i < count; i++) {
        char dir[512], probe[600];
        snprintf(dir, sizeof dir, "%s/%s", vec_dir, names[i]);
        snprintf(probe, sizeof probe, "%s/D.npy", dir);
        if (exists(probe)) denoise_case(dir, names[i]), cases++;
        snprintf(probe, sizeof probe, "%s/params.json", dir);
        if (exists(probe)) sample_case(dir, names[i]), cases++;
        free(names[i]);
    }
    CHECK(cases >= 8, "only %d vector cases found under %s", cases, vec_dir);
    edm_backend_free(backend);
    return check_finish();
}
