/*
 * bench_engine.c - ms per network evaluation (the fastest of at least 3 timed ones) and achieved
 * next to the machine's measured SGEMM rate, so the fraction of peak is visible.
 *
 *   bench_engine [--preset cifar10-ddpmpp | --model FILE] [--batch 1,16] [--backend cpu|cuda|auto]
 *                [--precision fp32|tf32|fp16|bf16] [--seconds 3]
 *
 * The network has random weights (edm_model_new_random): speed does not depend on values.
 * --model times a model file instead (bench/vs_pytorch.py: the file the official code wrote).
 * The SGEMM reference is one large square-ish SGEMM on the same threads (OpenBLAS or oneDNN).
 */
#include <cblas.h>
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The machine's SGEMM rate on `threads` threads: the better of OpenBLAS (which the CPU
 * backend pins to one thread, so set the count for the measurement and restore it after) and
 * oneDNN's dnnl_sgemm (Debian's OpenBLAS runs generic SSE3 kernels on CPUs newer than it
 * knows; oneDNN picks kernels by ISA). *which says which. */
static double sgemm_gflops(int threads, const char **which) {
    const int M = 1024, N = 1024, K = 2304;
    int saved = openblas_get_num_threads();
    int nthr = threads > 0 ? threads : openblas_get_num_procs();
    openblas_set_num_threads(nthr);
    omp_set_num_threads(nthr);
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N),
          *c = malloc(sizeof(float) * M * N);
    for (long i = 0; i < (long)M * K; i++) a[i] = (float)(i % 7) * 0.1f;
    for (long i = 0; i < (long)K * N; i++) b[i] = (float)(i % 5) * 0.1f;
    double best = 0;
    for (int lib = 0; lib < 2; lib++) {
        int reps = -1; /* the first call warms up */
        double t0 = 0, t = 0;
        do {
            if (lib == 0)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, a, K, b, N, 0,
                            c, N);
            else
                dnnl_sgemm('N', 'N', M, N, K, 1, a, K, b, N, 0, c, N);
            if (++reps == 0) t0 = now();
        } while (reps == 0 || (t = now() - t0) < 1.0);
        double gf = 2.0 * M * N * K * reps / t / 1e9;
        if (gf > best) best = gf, *which = lib ? "oneDNN" : "OpenBLAS";
    }
    free(a), free(b), free(c);
    openblas_set_num_threads(saved);
    return best;
}

int main(int argc, char **argv) {
    const char *preset = "cifar10-ddpmpp", *batches = "1,16", *model_path = NULL;
    double seconds = 3;
    edm_error err;
    edm_backend_options bo;
    edm_backend_options_default(&bo);
    bo.name = "cpu";
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_engine: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--preset") == 0) preset = v;
        else if (strcmp(argv[i], "--model") == 0) model_path = v;
        else if (strcmp(argv[i], "--batch") == 0) batches = v;
        else if (strcmp(argv[i], "--seconds") == 0) seconds = atof(v);
        else if (strcmp(argv[i], "--backend") == 0) {
            edm_backend_info bi;
            if (edm_backend_lookup(v, &bi, &err) == EDM_EINVAL)
                return fprintf(stderr, "bench_engine: %s\n", err.message), 2;
            bo.name = v;
        } else if (strcmp(argv[i], "--precision") == 0) {
            if (edm_precision_parse(v, &bo.precision)) return fprintf(stderr, "bad --precision\n"), 2;
        } else return fprintf(stderr, "bench_engine: unknown option %s\n", argv[i]), 2;
        i++;
    }
    edm_config cfg;
    edm_model *model = NULL;
    edm_backend *b = NULL;
    enum edm_status st = model_path ? edm_model_load(model_path, &model, &err)
                                    : edm_config_preset(preset, &cfg, &err) ? err.status
                                    : edm_model_new_random(&cfg, 1, &model, &err);
    if (model_path && st == EDM_OK) cfg = *edm_model_config(model);
    if (st != EDM_OK || edm_backend_new(&bo, &b, &err)) {
        fprintf(stderr, "bench_engine: %s\n", err.message);
        return 1;
    }
    double flops = edm_model_flops_per_image(model);
    const char *peak_lib = "";
    double peak = strcmp(edm_backend_name(b), "cpu") == 0 ? sgemm_gflops(bo.threads, &peak_lib) : 0;
    printf("network: %s, %.1f M parameters, %.2f GFLOP per evaluation per image\n",
           model_path ? model_path : preset,
           edm_model_param_count(model) / 1e6, flops / 1e9);
    printf("backend: %s\n", edm_backend_describe(b));
    if (peak > 0)
        printf("machine SGEMM (1024x1024x2304, same threads, best of OpenBLAS and oneDNN): "
               "%.1f GFLOP/s (%s)\n", peak, peak_lib);
    printf("%6s %12s %12s %12s %10s %10s\n", "batch", "ms/eval", "ms/img-eval", "GFLOP/s",
           "of SGEMM", "img/s@35");
    char *list = strdup(batches);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int n = atoi(tok);
        edm_denoiser *den = NULL;
        if (n < 1 || edm_denoiser_new(model, b, n, &den, &err)) {
            fprintf(stderr, "batch %s: %s\n", tok, n < 1 ? "bad batch" : err.message);
            continue;
        }
        size_t img = (size_t)cfg.img_channels * cfg.img_resolution * cfg.img_resolution;
        float *x = malloc(sizeof(float) * img * n), *out = malloc(sizeof(float) * img * n);
        float *labels = calloc((size_t)n * (cfg.label_dim ? cfg.label_dim : 1), sizeof(float));
        double *sigma = malloc(sizeof(double) * n);
        edm_rng_normal(7, EDM_RNG_LATENTS, 0, x, img * n);
        for (int i = 0; i < n; i++) {
            sigma[i] = 0.5 + i;
            if (cfg.label_dim) labels[(size_t)i * cfg.label_dim + i % cfg.label_dim] = 1;
        }
        /* warm-up, then time whole evaluations until `seconds` have passed (at least 3) and
         * keep the fastest: on a shared machine the others measure the neighbours too */
        edm_denoiser_eval(den, n, x, sigma, cfg.label_dim ? labels : NULL, NULL, out, &err);
        int reps = 0;
        double t0 = now(), best = 1e30;
        do {
            const double e0 = now();
            if (edm_denoiser_eval(den, n, x, sigma, cfg.label_dim ? labels : NULL, NULL, out, &err)) {
                fprintf(stderr, "eval: %s\n", err.message);
                return 1;
            }
            const double took = now() - e0;
            if (took < best) best = took;
            reps++;
        } while (reps < 3 || now() - t0 < seconds);
        double ms = best * 1e3, gf = flops * n / best / 1e9;
        printf("%6d %12.2f %12.2f %12.1f %9.0f%% %10.2f\n", n, ms, ms / n, gf,
               peak > 0 ? 100 * gf / peak : 0, 1e3 * n / (ms * 35));
        free(x), free(out), free(labels), free(sigma);
        edm_denoiser_free(den);
    }
    free(list);
    edm_backend_free(b);
    edm_model_free(model);
    return 0;
}
