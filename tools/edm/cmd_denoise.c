/*
 * cmd_denoise.c - `edm denoise`: one preconditioned network evaluation D(x; sigma) for a
 * batch given as NPY files (spec 0 shapes), written as NPY. The conformance tests compare
 * its output with D.npy made by the official code.
 *
 *   x        (N, C, R, R) float32
 *   sigma    (N,) float32, or a single value (shape () or (1,)) for every image
 *   labels   (N, label_dim) one-hot, optional (absent = zeros, as the reference)
 *   augment  (N, augment_dim), optional (absent = map_augment skipped)
 *
 * The batch runs through the denoiser in chunks of --batch images.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

typedef struct denoise_args {
    const char *model, *x, *sigma, *labels, *augment, *out;
    int batch;
    cli_backend_args backend;
} denoise_args;

static const cli_option denoise_options[] = {
    {"model", "network", CLI_STRING, offsetof(denoise_args, model), "PATH",
     "the model file (edm-safetensors/1)", 0, 0, NULL, NULL},
    {"x", NULL, CLI_STRING, offsetof(denoise_args, x), "X.npy", "noisy images (N,C,H,W) float32",
     0, 0, NULL, NULL},
    {"sigma", NULL, CLI_STRING, offsetof(denoise_args, sigma), "S.npy",
     "noise levels (N,) float32, or one value for all", 0, 0, NULL, NULL},
    {"class-labels", "class_labels", CLI_STRING, offsetof(denoise_args, labels), "L.npy",
     "class labels (N,label_dim) one-hot (default zeros)", 0, 0, NULL, NULL},
    {"augment-labels", "augment_labels", CLI_STRING, offsetof(denoise_args, augment), "A.npy",
     "augmentation labels (N,augment_dim) (default none)", 0, 0, NULL, NULL},
    {"out", NULL, CLI_STRING, offsetof(denoise_args, out), "D.npy",
     "where to write D(x; sigma) (N,C,H,W) float32", 0, 0, NULL, NULL},
    {"batch", NULL, CLI_INT, offsetof(denoise_args, batch), "B",
     "images per network evaluation (default 64)", 1, 65536, NULL, NULL},
    CLI_BACKEND_OPTIONS(denoise_args),
    {NULL, NULL, CLI_FLAG, 0, NULL, NULL, 0, 0, NULL, NULL},
};

int cmd_denoise(int argc, char **argv) {
    static const char *cmd = "denoise";
    denoise_args a = {0};
    a.batch = 64;
    cli_backend_args_default(&a.backend);
    cli_parsed parsed;
    int rc = cli_parse_command(cmd, denoise_options, argc, argv, &a, &parsed,
                               "--model M --x X.npy --sigma S.npy --out D.npy [options]",
                               "One preconditioned network evaluation D(x; sigma) per image.");
    if (rc >= 0) return rc;
    if (parsed.n_positional)
        return cli_fail(cmd, "unexpected argument '%s'; see edm denoise --help",
                        parsed.positional[0]) + 1;
    if (!a.model) return cli_fail(cmd, "no model given (--model M)") + 1;
    if (!a.x) return cli_fail(cmd, "no input given (--x X.npy)") + 1;
    if (!a.sigma) return cli_fail(cmd, "no noise levels given (--sigma S.npy)") + 1;
    if (!a.out) return cli_fail(cmd, "no output given (--out D.npy)") + 1;

    edm_model *model = NULL;
    edm_backend *backend = NULL;
    edm_denoiser *den = NULL;
    edm_npy x = {0}, sigma = {0}, labels = {0}, augment = {0};
    double *sig = NULL;
    float *out = NULL;
    edm_error err;
    rc = 1;

    if (cli_model_load(cmd, a.model, &model)) goto done;
    const edm_config *c = edm_model_config(model);
    const int64_t x_shape[4] = {-1, c->img_channels, c->img_resolution, c->img_resolution};
    if (cli_npy_read(cmd, "--x", a.x, 4, x_shape, &x)) goto done;
    const int64_t N = x.shape[0];
    if (N < 1) {
        cli_fail(cmd, "--x %s: no images", a.x);
        goto done;
    }
    if (edm_npy_read(a.sigma, &sigma, &err) != EDM_OK) {
        cli_fail(cmd, "--sigma %s: %s", a.sigma, err.message);
        goto done;
    }
    const int64_t ns = edm_npy_numel(&sigma);
    if (sigma.ndim > 1 || (ns != N && ns != 1)) {
        cli_fail(cmd, "--sigma %s: %lld values, expected (%lld,) or one value", a.sigma,
                 (long long)ns, (long long)N);
        goto done;
    }
    if (a.labels) {
        if (c->label_dim == 0) {
            cli_fail(cmd, "--class-labels given but the model is unconditional");
            goto done;
        }
        const int64_t shape[2] = {N, c->label_dim};
        if (cli_npy_read(cmd, "--class-labels", a.labels, 2, shape, &labels)) goto done;
    }
    if (a.augment) {
        if (c->augment_dim == 0) {
            cli_fail(cmd, "--augment-labels given but the model has no augmentation input");
            goto done;
        }
        const int64_t shape[2] = {N, c->augment_dim};
        if (cli_npy_read(cmd, "--augment-labels", a.augment, 2, shape, &augment)) goto done;
    }

    const size_t img = (size_t)x_shape[1] * (size_t)x_shape[2] * (size_t)x_shape[3];
    sig = malloc((size_t)N * sizeof *sig);
    out = malloc((size_t)N * img * sizeof *out);
    if (!sig || !out) {
        cli_fail(cmd, "out of memory for %lld images", (long long)N);
        goto done;
    }
    for (int64_t i = 0; i < N; i++) sig[i] = sigma.data[ns == 1 ? 0 : i];

    if (cli_backend_open(cmd, &a.backend, &backend)) goto done;
    const int max_batch = N < a.batch ? (int)N : a.batch;
    if (edm_denoiser_new(model, backend, max_batch, &den, &err) != EDM_OK) {
        cli_fail(cmd, "%s", err.message);
        goto done;
    }
    const double t0 = cli_now();
    for (int64_t i = 0; i < N; i += max_batch) {
        const int n = (int)(N - i < max_batch ? N - i : max_batch);
        if (edm_denoiser_eval(den, n, x.data + (size_t)i * img, sig + i,
                              labels.data ? labels.data + (size_t)i * (size_t)c->label_dim : NULL,
                              augment.data ? augment.data + (size_t)i * (size_t)c->augment_dim : NULL,
                              out + (size_t)i * img, &err) != EDM_OK) {
            cli_fail(cmd, "%s", err.message);
            goto done;
        }
    }
    const double dt = cli_now() - t0;
    if (edm_npy_write(a.out, out, 4, x.shape, &err) != EDM_OK) {
        cli_fail(cmd, "--out %s: %s", a.out, err.message);
        goto done;
    }
    printf("denoised %lld images in %.3f s (%.2f ms per image)\n", (long long)N, dt,
           1e3 * dt / (double)N);
    rc = 0;

done:
    free(out);
    free(sig);
    edm_npy_clear(&augment);
    edm_npy_clear(&labels);
    edm_npy_clear(&sigma);
    edm_npy_clear(&x);
    edm_denoiser_free(den);
    edm_backend_free(backend);
    edm_model_free(model);
    return rc;
}
