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

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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
#define TIME_BEST(best, call)                                                                   \
    do {                                                                                        \
        call;                                                                                   \
        best = 1e30;                                                                            \
        double t_all = now();                                                                   \
        for (int r_ = 0; r_ < 7 && now() - t_all < 2.0; r_++) {                                 \
            double t0_ = now();                                                                 \
            call;                                                                               \
            double dt_ = now() - t0_;                                                           \
            if (dt_ < best) best = dt_;                                                         \
        }                                                                                       \
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
    edm_tensor in = tensor(N, C, R, R), out = up ? tensor(N, C, 2 * R, 2 * R) : tensor(N, C, R / 2, R / 2);
    double f0 = B->flops, sec;
    if (up) edm_op_fir_up(B, &out, &in, &f, pad);
    else edm_op_fir_down(B, &out, &in, &f, pad);
    double flops = B->flops - f0;
    if (up) TIME_BEST(sec, edm_op_fir_up(B, &out, &in, &f, pad));
    else TIME_BEST(sec, edm_op_fir_down(B, &out, &in, &f, pad));
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

int main(int argc, char **argv) {
    int N = argc > 1 ? atoi(argv[1]) : 16;
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.kind = EDM_BACKEND_CPU;
    o.threads = argc > 2 ? atoi(argv[2]) : 0;
    edm_error err;
    if (edm_backend_new(&o, &B, &err) != EDM_OK) {
        fprintf(stderr, "bench_ops: %s\n", err.message);
        return 1;
    }
    T = openblas_get_num_procs();
    if (o.threads && o.threads < T) T = o.threads;
    printf("backend: %s, batch %d\n", edm_backend_describe(B), N);
    printf("machine: sgemm 2048^3 with %d OpenBLAS threads: %.1f GFLOP/s\n\n", T,
           sgemm_rate(2048, 2048, 2048));

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
