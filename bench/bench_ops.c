/*
 * bench_ops.c - op-level micro benchmark of the CPU backend on CIFAR-10 DDPM++ shapes
 * (SongUNet, mc = 128, channel_mult [2,2,2]: 256 channels at 32x32, 16x16 and 8x8).
 *
 * For each op: milliseconds per call (best of a few timed repetitions after a warm-up),
 * GFLOP/s by the front-end's FLOP count, and for the GEMM-shaped ops the rate of one plain
 * cblas_sgemm of the same M, N, K with OpenBLAS's own threading (the "machine SGEMM rate" the
 * backend is measured against). The first line is a large square SGEMM: the machine's peak.
 *
 *   usage: build/bench/bench_ops [batch=16] [threads=0 (all)]   (built by `make`)
 *          build/bench/bench_ops 16 1 cifar10-ddpmpp [reps] [precision]
 *            the whole network (random weights) through a timed copy of the op table:
 *            time, share and GFLOP/s per op kind and shape (precision fp32 or bf16).
 * With threads = 1 the times are the thread's CPU time (robust on a busy machine).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "edm.h"
#include "ops.h"

static edm_backend *B;
static int T;
/* With one thread every op runs on the calling thread, so its CPU time is the op's cost
 * even on a shared, busy machine; with more, wall time (the team's critical path). */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static edm_tensor tensor(int n, int c, int h, int w) {
    edm_tensor t = {NULL, n, c, h, w, EDM_F32};
    size_t count = (size_t)n * c * h * w;
    t.data = B->ops->alloc(B->ctx, count * sizeof(float));
    if (!t.data) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    float *p = t.data;
    for (size_t i = 0; i < count; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return t;
}

static void drop(edm_tensor *t) {
    B->ops->free(B->ctx, t->data);
}

/* Best seconds per call of fn over reps runs (after a warm-up call); stops early past 2 s. */
#define TIME_BEST(best, call)                                                                      \
    do {                                                                                           \
        call;                                                                                      \
        best = 1e30;                                                                               \
        double t_all = now();                                                                      \
        for (int r_ = 0; r_ < 7 && now() - t_all < 2.0; r_++) {                                    \
            double t0_ = now();                                                                    \
            call;                                                                                  \
            double dt_ = now() - t0_;                                                              \
            if (dt_ < best) best = dt_;                                                            \
        }                                                                                          \
    } while (0)

/* One plain multi-threaded SGEMM of the same shape; returns GFLOP/s. */
static double sgemm_rate(int M, int N, int K) {
    float *A = calloc((size_t)M * K, sizeof(float)), *Bm = calloc((size_t)K * N, sizeof(float));
    float *C = calloc((size_t)M * N, sizeof(float));
    for (size_t i = 0; i < (size_t)M * K; i++) A[i] = (float)(i % 7) * 0.1f;
    for (size_t i = 0; i < (size_t)K * N; i++) Bm[i] = (float)(i % 5) * 0.1f;
    openblas_set_num_threads(T);
    double best;
    TIME_BEST(best, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, Bm,
                                N, 0.0f, C, N));
    openblas_set_num_threads(1); /* what the backend expects */
    free(A), free(Bm), free(C);
    return 2.0 * M * N * (double)K / best / 1e9;
}

static double total_ms, total_flops;

static void report(const char *name, double sec, double flops, double ref_gflops) {
    total_ms += sec * 1e3;
    total_flops += flops;
    if (ref_gflops > 0)
        printf("%-44s %8.3f ms %7.1f GFLOP/s   sgemm same MNK %6.1f GFLOP/s (%3.0f%%)\n", name,
               sec * 1e3, flops / sec / 1e9, ref_gflops, 100.0 * flops / sec / 1e9 / ref_gflops);
    else
        printf("%-44s %8.3f ms %7.1f GFLOP/s\n", name, sec * 1e3, flops / sec / 1e9);
    if (B->failed) {
        printf("  backend failed: %s\n", B->message);
        edm_backend_clear(B);
    }
}

static void bench_conv(int N, int Ci, int Co, int R, int k) {
    int pad = k / 2;
    edm_tensor in = tensor(N, Ci, R, R), w = tensor(Co, Ci, k, k), b = tensor(1, Co, 1, 1);
    edm_tensor out = tensor(N, Co, R, R), res = tensor(N, Co, R, R);
    double f0 = B->flops, sec;
    edm_op_conv2d(B, &out, &in, &w, &b, pad, &res, 0.70710678f);
    double flops = B->flops - f0;
    TIME_BEST(sec, edm_op_conv2d(B, &out, &in, &w, &b, pad, &res, 0.70710678f));
    char name[96];
    snprintf(name, sizeof name, "conv%dx%d %4d->%-4d %2dx%-2d +bias+res", k, k, Ci, Co, R, R);
    report(name, sec, flops, sgemm_rate(Co, N * R * R, Ci * k * k));
    drop(&in), drop(&w), drop(&b), drop(&out), drop(&res);
}

static void bench_gn(int N, int C, int R, int silu) {
    edm_tensor in = tensor(N, C, R, R), g = tensor(1, C, 1, 1), be = tensor(1, C, 1, 1);
    edm_tensor pa = tensor(N, C, 1, 1), out = tensor(N, C, R, R);
    double f0 = B->flops, sec;
    edm_op_group_norm(B, &out, &in, &g, &be, 32, 1e-6f, &pa, NULL, silu);
    double flops = B->flops - f0;
    TIME_BEST(sec, edm_op_group_norm(B, &out, &in, &g, &be, 32, 1e-6f, &pa, NULL, silu));
    char name[96];
    snprintf(name, sizeof name, "group_norm %4d %2dx%-2d pre_add%s", C, R, R, silu ? " silu" : "");
    report(name, sec, flops, 0);
    drop(&in), drop(&g), drop(&be), drop(&pa), drop(&out);
}

static void bench_attention(int N, int C, int R, int heads) {
    edm_tensor qkv = tensor(N, 3 * C, R, R), out = tensor(N, C, R, R);
    double f0 = B->flops, sec;
    edm_op_attention(B, &out, &qkv, heads);
    double flops = B->flops - f0;
    TIME_BEST(sec, edm_op_attention(B, &out, &qkv, heads));
    char name[96];
    snprintf(name, sizeof name, "attention %4d %2dx%-2d heads %d", C, R, R, heads);
    int P = R * R;
    report(name, sec, flops, sgemm_rate(P, N * heads * P, C / heads));
    drop(&qkv), drop(&out);
}

static void bench_fir(int N, int C, int R, int up, int L) {
    float f1[4] = {0.25f, 0.25f, 0.25f, 0.25f}, f2[16];
    const float r[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++) f2[a * 4 + c] = r[a] * r[c] / 64.0f;
    edm_tensor f = tensor(1, 1, L, L);
    memcpy(f.data, L == 2 ? f1 : f2, sizeof(float) * L * L);
    int pad = L == 4 ? 1 : 0;
    edm_tensor in = tensor(N, C, R, R),
               out = up ? tensor(N, C, 2 * R, 2 * R) : tensor(N, C, R / 2, R / 2);
    double f0 = B->flops, sec;
    if (up)
        edm_op_fir_up(B, &out, &in, &f, pad);
    else
        edm_op_fir_down(B, &out, &in, &f, pad);
    double flops = B->flops - f0;
    if (up)
        TIME_BEST(sec, edm_op_fir_up(B, &out, &in, &f, pad));
    else
        TIME_BEST(sec, edm_op_fir_down(B, &out, &in, &f, pad));
    char name[96];
    snprintf(name, sizeof name, "fir_%s L%d %4d %2dx%-2d", up ? "up" : "down", L, C, R, R);
    report(name, sec, flops, 0);
    drop(&f), drop(&in), drop(&out);
}

static void bench_elem(int N, int C, int R) {
    edm_tensor x = tensor(N, C, R, R), y = tensor(N, C, R, R), b = tensor(1, C, 1, 1);
    edm_tensor cat = tensor(N, 2 * C, R, R);
    double f0 = B->flops, sec;
    edm_op_bias_residual(B, &y, &x, &b, &y, 0.70710678f);
    double flops = B->flops - f0;
    TIME_BEST(sec, edm_op_bias_residual(B, &y, &x, &b, &y, 0.70710678f));
    char name[96];
    snprintf(name, sizeof name, "bias_residual %4d %2dx%-2d", C, R, R);
    report(name, sec, flops, 0);
    TIME_BEST(sec, edm_op_concat(B, &cat, &x, &y));
    snprintf(name, sizeof name, "concat %4d+%-4d %2dx%-2d", C, C, R, R);
    report(name, sec, 0, 0);
    drop(&x), drop(&y), drop(&b), drop(&cat);
}

static void bench_linear(int N, int K, int O) {
    edm_tensor in = tensor(N, K, 1, 1), w = tensor(O, K, 1, 1), b = tensor(1, O, 1, 1);
    edm_tensor out = tensor(N, O, 1, 1);
    double f0 = B->flops, sec;
    edm_op_linear(B, &out, &in, &w, &b, 1.0f, 0.0f, 1);
    double flops = B->flops - f0;
    TIME_BEST(sec, edm_op_linear(B, &out, &in, &w, &b, 1.0f, 0.0f, 1));
    char name[96];
    snprintf(name, sizeof name, "linear %4d->%-4d N%d silu", K, O, N);
    report(name, sec, flops, 0);
    drop(&in), drop(&w), drop(&b), drop(&out);
}

/* ---- whole-network profile: the CPU table wrapped with per-op timers ------------------- */

static const edm_ops *inner;
static edm_ops timed;
#define NKEYS 128
static struct {
    char key[80];
    double sec, flops;
    long calls;
} prof[NKEYS];

static void account(const char *key, double sec, double flops) {
    int i = 0;
    while (i < NKEYS && prof[i].key[0] && strcmp(prof[i].key, key) != 0) i++;
    if (i == NKEYS) return;
    snprintf(prof[i].key, sizeof prof[i].key, "%s", key);
    prof[i].sec += sec;
    prof[i].flops += flops;
    prof[i].calls++;
}

static int t_conv2d(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *w,
                    const edm_tensor *b, int pad, const edm_tensor *r, float s, char *msg) {
    double t0 = now();
    int rc = inner->conv2d(ctx, out, in, w, b, pad, r, s, msg);
    char key[80];
    snprintf(key, sizeof key, "conv%dx%d %4d->%-4d %2dx%-2d", w->h, w->h, in->c, out->c, out->h,
             out->w);
    account(key, now() - t0, 2.0 * out->n * out->c * out->h * out->w * (double)in->c * w->h * w->h);
    return rc;
}
static int t_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *f,
                      int pad, char *msg) {
    double t0 = now();
    int rc = inner->fir_down(ctx, out, in, f, pad, msg);
    account("fir_down", now() - t0, 0);
    return rc;
}
static int t_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *f, int pad,
                    char *msg) {
    double t0 = now();
    int rc = inner->fir_up(ctx, out, in, f, pad, msg);
    account("fir_up", now() - t0, 0);
    return rc;
}
static int t_linear(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *w,
                    const edm_tensor *b, float al, float be, int act, char *msg) {
    double t0 = now();
    int rc = inner->linear(ctx, out, in, w, b, al, be, act, msg);
    account("linear", now() - t0, 2.0 * in->n * (double)w->n * w->c * w->h * w->w);
    return rc;
}
static int t_group_norm(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *g,
                        const edm_tensor *be, int G, float eps, const edm_tensor *pa,
                        const edm_tensor *ss, int act, char *msg) {
    double t0 = now();
    int rc = inner->group_norm(ctx, out, in, g, be, G, eps, pa, ss, act, msg);
    char key[80];
    snprintf(key, sizeof key, "group_norm %2dx%-2d%s", in->h, in->w, act ? " silu" : "");
    account(key, now() - t0, 0);
    return rc;
}
static int t_bias_residual(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *b,
                           const edm_tensor *r, float s, char *msg) {
    double t0 = now();
    int rc = inner->bias_residual(ctx, out, in, b, r, s, msg);
    account("bias_residual", now() - t0, 0);
    return rc;
}
static int t_concat(void *ctx, edm_tensor *out, const edm_tensor *a, const edm_tensor *b,
                    char *msg) {
    double t0 = now();
    int rc = inner->concat(ctx, out, a, b, msg);
    account("concat", now() - t0, 0);
    return rc;
}
static int t_attention(void *ctx, edm_tensor *out, const edm_tensor *qkv, int heads, char *msg) {
    double t0 = now();
    int rc = inner->attention(ctx, out, qkv, heads, msg);
    char key[80];
    snprintf(key, sizeof key, "attention %4d %2dx%-2d", out->c, out->h, out->w);
    double P = (double)out->h * out->w;
    account(key, now() - t0, 4.0 * out->n * P * P * out->c);
    return rc;
}
static int t_embed(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *f, int swap,
                   char *msg) {
    double t0 = now();
    int rc = inner->embed(ctx, out, x, f, swap, msg);
    account("embed", now() - t0, 0);
    return rc;
}
static int t_scale_rows(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *c,
                        char *msg) {
    double t0 = now();
    int rc = inner->scale_rows(ctx, out, in, c, msg);
    account("scale_rows", now() - t0, 0);
    return rc;
}
static int t_precond_out(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                         const edm_tensor *cs, const edm_tensor *co, char *msg) {
    double t0 = now();
    int rc = inner->precond_out(ctx, out, x, F, cs, co, msg);
    account("precond_out", now() - t0, 0);
    return rc;
}

static int cmp_prof(const void *a, const void *b) {
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Runs `reps` evaluations of the preset network at batch N through the timed table and prints
 * where the time goes. */
static int profile_network(const char *preset, int N, int reps) {
    edm_error err;
    edm_config cfg;
    edm_model *model = NULL;
    edm_denoiser *den = NULL;
    if (edm_config_preset(preset, &cfg, &err) || edm_model_new_random(&cfg, 1, &model, &err)) {
        fprintf(stderr, "bench_ops: %s\n", err.message);
        return 1;
    }
    inner = B->ops;
    timed = *inner;
    timed.conv2d = t_conv2d, timed.fir_down = t_fir_down, timed.fir_up = t_fir_up;
    timed.linear = t_linear, timed.group_norm = t_group_norm;
    timed.bias_residual = t_bias_residual, timed.concat = t_concat, timed.attention = t_attention;
    timed.embed = t_embed, timed.scale_rows = t_scale_rows, timed.precond_out = t_precond_out;
    B->ops = &timed;
    if (edm_denoiser_new(model, B, N, &den, &err)) {
        fprintf(stderr, "bench_ops: %s\n", err.message);
        return 1;
    }
    size_t img = (size_t)cfg.img_channels * cfg.img_resolution * cfg.img_resolution;
    float *x = malloc(sizeof(float) * img * N), *out = malloc(sizeof(float) * img * N);
    double *sigma = malloc(sizeof(double) * N);
    edm_rng_normal(7, EDM_RNG_LATENTS, 0, x, img * N);
    for (int i = 0; i < N; i++) sigma[i] = 0.5 + i;
    float *labels = cfg.label_dim ? calloc((size_t)N * cfg.label_dim, sizeof(float)) : NULL;
    edm_denoiser_eval(den, N, x, sigma, labels, NULL, out, &err); /* warm-up */
    memset(prof, 0, sizeof prof);
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    double t0 = now();
    for (int r = 0; r < reps; r++) edm_denoiser_eval(den, N, x, sigma, labels, NULL, out, &err);
    double total = (now() - t0) / reps;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    double cpu = (c1.tv_sec - c0.tv_sec + (c1.tv_nsec - c0.tv_nsec) * 1e-9) / reps;
    double flops = edm_model_flops_per_image(model) * N;
    printf("\nnetwork %s, batch %d: %.1f ms per evaluation, %.2f GFLOP, %.1f GFLOP/s "
           "(process CPU %.1f ms per evaluation)\n",
           preset, N, total * 1e3, flops / 1e9, flops / total / 1e9, cpu * 1e3);
    double order[NKEYS][2];
    int n = 0;
    for (int i = 0; i < NKEYS && prof[i].key[0]; i++)
        order[n][0] = prof[i].sec, order[n][1] = i, n++;
    qsort(order, (size_t)n, sizeof order[0], cmp_prof);
    printf("%-34s %6s %10s %6s %9s\n", "op", "calls", "ms/eval", "share", "GFLOP/s");
    for (int j = 0; j < n; j++) {
        int i = (int)order[j][1];
        double ms = prof[i].sec / reps * 1e3;
        printf("%-34s %6ld %10.2f %5.1f%%", prof[i].key, prof[i].calls / reps, ms,
               100.0 * prof[i].sec / reps / total);
        if (prof[i].flops > 0) printf(" %9.1f", prof[i].flops / prof[i].sec / 1e9);
        printf("\n");
    }
    free(x), free(out), free(sigma), free(labels);
    edm_denoiser_free(den);
    B->ops = inner;
    edm_model_free(model);
    return 0;
}

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 16;
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = "cpu";
    o.threads = argc > 2 ? atoi(argv[2]) : 0;
    edm_error err;
    if (argc > 5 && edm_precision_parse(argv[5], &o.precision) != EDM_OK) {
        fprintf(stderr, "bench_ops: unknown precision '%s'\n", argv[5]);
        return 2;
    }
    if (edm_backend_new(&o, &B, &err) != EDM_OK) {
        fprintf(stderr, "bench_ops: %s\n", err.message);
        return 1;
    }
    T = openblas_get_num_procs();
    if (o.threads && o.threads < T) T = o.threads;
    if (T == 1) clock_id = CLOCK_THREAD_CPUTIME_ID;
    printf("backend: %s, batch %d, %s time\n", edm_backend_describe(B), N,
           T == 1 ? "thread CPU" : "wall");
    printf("machine: sgemm 2048^3 with %d OpenBLAS threads: %.1f GFLOP/s\n\n", T,
           sgemm_rate(2048, 2048, 2048));

    if (argc > 3) { /* bench_ops N threads preset [reps]: where the network's time goes */
        int rc = profile_network(argv[3], N, argc > 4 ? atoi(argv[4]) : 2);
        edm_backend_free(B);
        return rc;
    }
    bench_conv(N, 3, 128, 32, 3);
    bench_conv(N, 128, 256, 32, 3);
    bench_conv(N, 256, 256, 32, 3);
    bench_conv(N, 512, 256, 32, 3);
    bench_conv(N, 256, 256, 16, 3);
    bench_conv(N, 256, 256, 8, 3);
    bench_conv(N, 256, 256, 4, 3);
    bench_conv(N, 512, 256, 16, 1);
    bench_conv(N, 256, 768, 16, 1);
    bench_conv(N, 256, 256, 16, 1);
    bench_conv(N, 256, 3, 32, 3);
    bench_attention(N, 256, 16, 1);
    bench_attention(N, 256, 8, 1);
    bench_gn(N, 256, 32, 1);
    bench_gn(N, 256, 16, 1);
    bench_gn(N, 256, 8, 0);
    bench_fir(N, 256, 32, 0, 2);
    bench_fir(N, 256, 16, 1, 2);
    bench_fir(N, 256, 32, 0, 4);
    bench_fir(N, 256, 16, 1, 4);
    bench_elem(N, 256, 32);
    bench_linear(N, 512, 512);
    edm_backend_free(B);
    return 0;
}
