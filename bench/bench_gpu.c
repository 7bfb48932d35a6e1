/*
 * bench_gpu.c - the GPU benchmark: whole-denoiser speed per precision and batch size on the
 * CIFAR-10 DDPM++ network (edm-cifar10-32x32-cond-vp's configuration, random weights), the
 * error of each precision against fp32, one image's sampling latency, and a few op-level
 * timings that show where the time goes.
 *
 *   bench_gpu [--preset cifar10-ddpmpp] [--batch 1,64,512,2048] [--precision fp16,bf16,tf32,fp32]
 *             [--graphs 0|1|both] [--graph-max 64] [--seconds 2] [--device 0] [--check 64]
 *             [--no-ops] [--no-sample] [--no-cpu]
 *
 * Timing: whole edm_denoiser_eval calls (upload, network, download: what serving pays),
 * host clock, after warm-up (the first passes per batch size also capture CUDA graphs when
 * EDM_CUDA_GRAPHS=1), repeated until --seconds have passed (at least 3 times); the median is
 * reported. With --graphs both, graphs-on rows are measured for batches up to --graph-max
 * (where launch overhead matters). images/s counts 35 evaluations per image (18-step Heun). TFLOP/s uses
 * edm_model_flops_per_image; the fraction of peak uses the dense datasheet rate of the card
 * (H100/H200 SXM: fp32 67, tf32 495, fp16/bf16 989 TFLOP/s) when the card is known.
 * Errors: D(x; sigma) of --check images at sigmas across the sampling range, each precision
 * against fp32 on the GPU, and fp32 GPU against the CPU backend on 2 images.
 * Every table row is also printed as a "csv," line for scripts.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edm.h"
#include "ops.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Dense datasheet TFLOP/s of the card named in the backend description, 0 if unknown. */
static double peak_tflops(const char *desc, enum edm_precision p) {
    static const struct {
        const char *name;
        double fp32, tf32, half;
    } cards[] = {
        {"H200", 67, 495, 989},    {"H100 PCIe", 51, 378, 756}, {"H100", 67, 495, 989},
        {"A100", 19.5, 156, 312},  {"L40S", 91.6, 183, 362},    {"GH200", 67, 495, 989},
    };
    for (size_t i = 0; i < sizeof cards / sizeof cards[0]; i++) {
        if (strstr(desc, cards[i].name)) {
            return p == EDM_PRECISION_FP32   ? cards[i].fp32
                   : p == EDM_PRECISION_TF32 ? cards[i].tf32
                                             : cards[i].half;
        }
    }
    return 0;
}

typedef struct inputs {
    int n;
    float *x, *labels, *out;
    double *sigma;
} inputs;

/* n images: x = latents * sigma, sigmas cycling through the 18-step EDM schedule, one-hot
 * labels. Deterministic, so every precision sees the same inputs. */
static void inputs_make(inputs *in, const edm_config *cfg, int n) {
    static const double sched[18] = {80,       57.58598, 40.78557, 28.37458, 19.35245, 12.91008,
                                     8.40094,  5.31519,  3.25682,  1.92334,  1.08817,  0.585348,
                                     0.296442, 0.139516, 0.0599473, 0.0229345, 0.00752802, 0.002};
    size_t img = (size_t)cfg->img_channels * cfg->img_resolution * cfg->img_resolution;
    in->n = n;
    in->x = malloc(sizeof(float) * img * n);
    in->out = malloc(sizeof(float) * img * n);
    in->labels = calloc((size_t)n * (cfg->label_dim ? cfg->label_dim : 1), sizeof(float));
    in->sigma = malloc(sizeof(double) * n);
    edm_rng_normal(7, EDM_RNG_LATENTS, 0, in->x, img * n);
    for (int i = 0; i < n; i++) {
        in->sigma[i] = sched[i % 18];
        for (size_t k = 0; k < img; k++) in->x[i * img + k] *= (float)in->sigma[i];
        if (cfg->label_dim) in->labels[(size_t)i * cfg->label_dim + i % cfg->label_dim] = 1;
    }
}

static void inputs_free(inputs *in) {
    free(in->x), free(in->out), free(in->labels), free(in->sigma);
}

static int eval(edm_denoiser *den, const edm_config *cfg, inputs *in, int n) {
    edm_error err;
    if (edm_denoiser_eval(den, n, in->x, in->sigma, cfg->label_dim ? in->labels : NULL, NULL,
                          in->out, &err)) {
        fprintf(stderr, "bench_gpu: eval of %d images: %s\n", n, err.message);
        return 1;
    }
    return 0;
}

/* max|a-b|/max|b| and ||a-b||/||b|| */
static void rel_errors(const float *a, const float *b, size_t n, double *max_rel, double *rms_rel) {
    double num = 0, den = 0, s = 0, t = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > num || d != d) num = d != d ? INFINITY : d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
        s += d * d;
        t += (double)b[i] * b[i];
    }
    *max_rel = num / (den > 0 ? den : 1);
    *rms_rel = sqrt(s / (t > 0 ? t : 1));
}

/* ---- op-level timings ------------------------------------------------------------------------ */

typedef struct opbench {
    edm_backend *b;
    void *ptr[8];
    int n;
} opbench;

static edm_tensor ob_tensor(opbench *o, int n, int c, int h, int w, enum edm_dtype dt) {
    edm_tensor t = {NULL, n, c, h, w, dt};
    size_t bytes = (size_t)edm_tensor_numel(&t) * edm_dtype_size(dt);
    t.data = o->b->ops->alloc(o->b->ctx, bytes);
    o->ptr[o->n++] = t.data;
    if (t.data) {
        float *host = malloc(sizeof(float) * (size_t)edm_tensor_numel(&t));
        for (int64_t i = 0; i < edm_tensor_numel(&t); i++)
            host[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
        edm_op_upload(o->b, &t, host);
        free(host);
    }
    return t;
}

static void ob_free(opbench *o) {
    for (int i = 0; i < o->n; i++) o->b->ops->free(o->b->ctx, o->ptr[i]);
    o->n = 0;
}

/* Times `reps` back-to-back runs of one op (queued, then one sync). */
#define OP_TIME(o, label, flops, call)                                                             \
    do {                                                                                           \
        char m_[EDM_OPS_MSG];                                                                      \
        call;                                                                                      \
        (o)->b->ops->sync((o)->b->ctx, m_);                                                        \
        double t_[5];                                                                              \
        for (int r_ = 0; r_ < 5; r_++) {                                                           \
            double s_ = now();                                                                     \
            for (int k_ = 0; k_ < 10; k_++) call;                                                  \
            (o)->b->ops->sync((o)->b->ctx, m_);                                                    \
            t_[r_] = (now() - s_) / 10;                                                            \
        }                                                                                          \
        double ms_ = median(t_, 5) * 1e3;                                                          \
        if ((o)->b->failed) {                                                                      \
            printf("  %-44s failed: %s\n", label, (o)->b->message);                               \
            edm_backend_clear((o)->b);                                                             \
        } else {                                                                                   \
            printf("  %-44s %9.3f ms %9.1f TFLOP/s\n", label, ms_, (flops) / (ms_ * 1e-3) / 1e12); \
            printf("csv,op,%s,%s,%.4f,%.2f\n", prec, label, ms_, (flops) / (ms_ * 1e-3) / 1e12);   \
        }                                                                                          \
    } while (0)

/* A CUDA backend on `device` at precision p (the EDM_CUDA_* switches are read here). */
static enum edm_status cuda_backend(int device, enum edm_precision p, edm_backend **b,
                                    edm_error *err) {
    edm_backend_options bo;
    edm_backend_options_default(&bo);
    bo.name = "cuda";
    bo.device = device;
    bo.precision = p;
    *b = NULL;
    return edm_backend_new(&bo, b, err);
}

/* conv 3x3 256->256 at 32x32 on the other convolution paths: the opt-in cuDNN path, and
 * im2col + cuBLAS with an L2-sized scratch budget (the im2col chunk decides whether the columns
 * stay in L2 between their write and the GEMM's read). */
static void conv_variant_benchmarks(enum edm_precision p, int device, const char *prec) {
    static const struct {
        const char *conv, *mb;
    } v[] = {{"cudnn", "512"}, {"im2col", "24"}};
    for (int i = 0; i < 2; i++) {
        setenv("EDM_CUDA_CONV", v[i].conv, 1);
        setenv("EDM_CUDA_SCRATCH_MB", v[i].mb, 1);
        setenv("EDM_CUDA_GRAPHS", "0", 1);
        edm_backend *b = NULL;
        edm_error err;
        if (cuda_backend(device, p, &b, &err) == EDM_OK) {
            opbench o = {b, {0}, 0};
            const enum edm_dtype dt = b->act_dtype;
            const int N = 64;
            edm_tensor in = ob_tensor(&o, N, 256, 32, 32, dt), w = ob_tensor(&o, 256, 256, 3, 3, dt);
            edm_tensor bias = ob_tensor(&o, 256, 1, 1, 1, EDM_F32),
                       out = ob_tensor(&o, N, 256, 32, 32, dt);
            char label[64];
            snprintf(label, sizeof label, "conv 3x3 256->256 32x32 %s, scratch %s MiB", v[i].conv,
                     v[i].mb);
            if (!b->failed && in.data && out.data)
                OP_TIME(&o, label, 2.0 * N * 256 * 1024 * 256 * 9,
                        edm_op_conv2d(b, &out, &in, &w, &bias, 1, NULL, 1.0f));
            ob_free(&o);
            edm_backend_free(b);
        }
        unsetenv("EDM_CUDA_SCRATCH_MB");
        unsetenv("EDM_CUDA_CONV");
    }
}

/* The whole network with convolutions through the opt-in cuDNN path (EDM_CUDA_CONV=cudnn),
 * for comparison with the default im2col + cuBLAS path at one batch size. */
static void network_cudnn_benchmark(const edm_model *model, const edm_config *cfg,
                                     enum edm_precision p, int device, int n, double seconds);

static void op_benchmarks(edm_backend *b, const char *prec) {
    opbench o = {b, {0}, 0};
    const enum edm_dtype dt = b->act_dtype;
    const int N = 64;
    printf(" op timings (batch %d, CIFAR-10 DDPM++ shapes):\n", N);
    {
        edm_tensor in = ob_tensor(&o, N, 256, 32, 32, dt), w = ob_tensor(&o, 256, 256, 3, 3, dt);
        edm_tensor bias = ob_tensor(&o, 256, 1, 1, 1, EDM_F32), out = ob_tensor(&o, N, 256, 32, 32, dt);
        if (!b->failed && in.data && out.data) {
            double f = 2.0 * N * 256 * 1024 * 256 * 9;
            OP_TIME(&o, "conv 3x3 256->256 32x32 +bias", f,
                    edm_op_conv2d(b, &out, &in, &w, &bias, 1, NULL, 1.0f));
            OP_TIME(&o, "conv 3x3 256->256 32x32 +bias +res=out", f,
                    edm_op_conv2d(b, &out, &in, &w, &bias, 1, &out, 0.7071068f));
            edm_tensor w1 = ob_tensor(&o, 256, 256, 1, 1, dt);
            OP_TIME(&o, "conv 1x1 256->256 32x32", 2.0 * N * 256 * 1024 * 256,
                    edm_op_conv2d(b, &out, &in, &w1, &bias, 0, NULL, 1.0f));
            edm_tensor g = ob_tensor(&o, 256, 1, 1, 1, EDM_F32), be = ob_tensor(&o, 256, 1, 1, 1, EDM_F32);
            OP_TIME(&o, "group_norm 256 32x32 +silu", 8.0 * N * 256 * 1024,
                    edm_op_group_norm(b, &out, &in, &g, &be, 32, 1e-6f, NULL, NULL, 1));
        }
        ob_free(&o);
    }
    {
        edm_tensor qkv = ob_tensor(&o, N, 768, 16, 16, dt), out = ob_tensor(&o, N, 256, 16, 16, dt);
        if (!b->failed && qkv.data && out.data)
            OP_TIME(&o, "attention 256ch 16x16", 4.0 * N * 256.0 * 256 * 256,
                    edm_op_attention(b, &out, &qkv, 1));
        ob_free(&o);
    }
}

static void network_cudnn_benchmark(const edm_model *model, const edm_config *cfg,
                                     enum edm_precision p, int device, int n, double seconds) {
    setenv("EDM_CUDA_CONV", "cudnn", 1);
    setenv("EDM_CUDA_GRAPHS", "0", 1);
    edm_backend *b = NULL;
    edm_denoiser *den = NULL;
    edm_error err;
    if (cuda_backend(device, p, &b, &err) == EDM_OK && edm_denoiser_new(model, b, n, &den, &err) == EDM_OK) {
        inputs in;
        inputs_make(&in, cfg, n);
        int fail = eval(den, cfg, &in, n);
        double t[64];
        int reps = 0;
        double t0 = now();
        while (!fail && reps < 64 && (reps < 3 || now() - t0 < seconds)) {
            double s = now();
            fail = eval(den, cfg, &in, n);
            t[reps++] = now() - s;
        }
        if (!fail) {
            const double ms = median(t, reps) * 1e3;
            const double tf = edm_model_flops_per_image(model) * n / (ms * 1e-3) / 1e12;
            printf("%-5s %-6s %6d %10.3f %10.1f %9.2f %9.1f   (convolutions through cuDNN, EDM_CUDA_CONV=cudnn)\n",
                   edm_precision_name(p), "off", n, ms, 1e3 * n / (ms * 35), ms * 35 / n, tf);
            printf("csv,eval_cudnn,%s,0,%d,%.4f,%.2f,%.2f\n", edm_precision_name(p), n, ms,
                   1e3 * n / (ms * 35), tf);
        }
        inputs_free(&in);
    } else {
        fprintf(stderr, "bench_gpu: cuDNN comparison: %s\n", err.message);
    }
    edm_denoiser_free(den);
    edm_backend_free(b);
    unsetenv("EDM_CUDA_CONV");
}

/* ---- main ---------------------------------------------------------------------------------- */

static int parse_list(const char *s, int *v, int max) {
    int n = 0;
    char *dup = strdup(s);
    for (char *tok = strtok(dup, ","); tok && n < max; tok = strtok(NULL, ",")) v[n++] = atoi(tok);
    free(dup);
    return n;
}

int main(int argc, char **argv) {
    const char *preset = "cifar10-ddpmpp", *batch_list = "1,64,512,2048",
               *prec_list = "fp16,bf16,tf32,fp32", *graphs_opt = "both";
    double seconds = 2;
    int device = 0, check_n = 64, do_ops = 1, do_sample = 1, do_cpu = 1, graph_max = 64;
    int model_channels = 0, resolution = 0; /* overrides, for quick runs (simulator) */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-ops") == 0) do_ops = 0;
        else if (strcmp(a, "--no-sample") == 0) do_sample = 0;
        else if (strcmp(a, "--no-cpu") == 0) do_cpu = 0;
        else if (!v) return fprintf(stderr, "bench_gpu: %s needs a value\n", a), 2;
        else if (strcmp(a, "--preset") == 0) preset = v, i++;
        else if (strcmp(a, "--batch") == 0) batch_list = v, i++;
        else if (strcmp(a, "--precision") == 0) prec_list = v, i++;
        else if (strcmp(a, "--graphs") == 0) graphs_opt = v, i++;
        else if (strcmp(a, "--seconds") == 0) seconds = atof(v), i++;
        else if (strcmp(a, "--device") == 0) device = atoi(v), i++;
        else if (strcmp(a, "--check") == 0) check_n = atoi(v), i++;
        else if (strcmp(a, "--graph-max") == 0) graph_max = atoi(v), i++;
        else if (strcmp(a, "--model-channels") == 0) model_channels = atoi(v), i++;
        else if (strcmp(a, "--resolution") == 0) resolution = atoi(v), i++;
        else return fprintf(stderr, "bench_gpu: unknown option %s\n", a), 2;
    }
    edm_backend_info cuda_info;
    if (edm_backend_lookup("cuda", &cuda_info, NULL) != EDM_OK || cuda_info.devices == 0) {
        printf("bench_gpu: no usable CUDA device (or built without CUDA): nothing to measure\n");
        return 0;
    }
    int batches[16], nb = parse_list(batch_list, batches, 16);
    if (check_n < 1) check_n = 1;
    int graph_modes[2], ngm = 0;
    if (strcmp(graphs_opt, "0") == 0 || strcmp(graphs_opt, "both") == 0) graph_modes[ngm++] = 0;
    if (strcmp(graphs_opt, "1") == 0 || strcmp(graphs_opt, "both") == 0) graph_modes[ngm++] = 1;

    edm_error err;
    edm_config cfg;
    edm_model *model = NULL;
    enum edm_status st = edm_config_preset(preset, &cfg, &err);
    if (st == EDM_OK) {
        if (model_channels > 0) cfg.model_channels = model_channels;
        if (resolution > 0) cfg.img_resolution = resolution;
        st = edm_model_new_random(&cfg, 1, &model, &err);
    }
    if (st != EDM_OK) {
        fprintf(stderr, "bench_gpu: %s\n", err.message);
        return 1;
    }
    const double flops = edm_model_flops_per_image(model);
    const size_t img = (size_t)cfg.img_channels * cfg.img_resolution * cfg.img_resolution;
    printf("network: %s, %.1f M parameters, %.2f GFLOP per image per evaluation\n", preset,
           edm_model_param_count(model) / 1e6, flops / 1e9);
    {
        size_t fr = 0, tot = 0;
        edm_backend *probe = NULL;
        if (cuda_backend(device, EDM_PRECISION_FP32, &probe, &err) == EDM_OK &&
            edm_backend_mem_info(probe, &fr, &tot, NULL) == EDM_OK)
            printf("device memory: %.1f GiB free of %.1f GiB\n", fr / 1073741824.0,
                   tot / 1073741824.0);
        edm_backend_free(probe);
    }

    inputs check;
    inputs_make(&check, &cfg, check_n);
    float *ref = NULL; /* fp32 GPU output on the check inputs */

    /* fp32 on the GPU against the CPU backend, 2 images (conformance sanity check). */
    float *cpu_out = NULL;
    if (do_cpu) {
        edm_backend_options co;
        edm_backend_options_default(&co);
        co.name = "cpu";
        edm_backend *cb = NULL;
        edm_denoiser *cd = NULL;
        if (edm_backend_new(&co, &cb, &err) || edm_denoiser_new(model, cb, 2, &cd, &err)) {
            fprintf(stderr, "bench_gpu: cpu reference: %s\n", err.message);
        } else {
            cpu_out = malloc(sizeof(float) * img * 2);
            if (edm_denoiser_eval(cd, 2, check.x, check.sigma, cfg.label_dim ? check.labels : NULL,
                                  NULL, cpu_out, &err)) {
                fprintf(stderr, "bench_gpu: cpu reference: %s\n", err.message);
                free(cpu_out);
                cpu_out = NULL;
            }
        }
        edm_denoiser_free(cd);
        edm_backend_free(cb);
    }

    int precs[4], np = 0;
    {
        char *dup = strdup(prec_list);
        for (char *tok = strtok(dup, ","); tok && np < 4; tok = strtok(NULL, ",")) {
            enum edm_precision p;
            if (edm_precision_parse(tok, &p) == EDM_OK) precs[np++] = (int)p;
            else fprintf(stderr, "bench_gpu: unknown precision %s\n", tok);
        }
        free(dup);
    }

    /* 1. Errors: every precision on the same check inputs, against fp32 on the GPU (and fp32
     * GPU against the CPU backend). Graphs off; max batch = the check batch, so this is quick. */
    setenv("EDM_CUDA_GRAPHS", "0", 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int pi = 0; pi < np; pi++) {
            const enum edm_precision prec = (enum edm_precision)precs[pi];
            if ((pass == 0) != (prec == EDM_PRECISION_FP32)) continue; /* fp32 first */
            edm_backend *b = NULL;
            edm_denoiser *den = NULL;
            if (cuda_backend(device, prec, &b, &err) || edm_denoiser_new(model, b, check_n, &den, &err)) {
                fprintf(stderr, "bench_gpu: %s: %s\n", edm_precision_name(prec), err.message);
            } else {
                if (pass == 0) printf("backend: %s\n", edm_backend_describe(b));
                if (!eval(den, &cfg, &check, check_n)) {
                    double mx, rms;
                    if (prec == EDM_PRECISION_FP32) {
                        ref = malloc(sizeof(float) * img * check_n);
                        memcpy(ref, check.out, sizeof(float) * img * check_n);
                        if (cpu_out) {
                            rel_errors(check.out, cpu_out, img * 2, &mx, &rms);
                            printf("error fp32 GPU vs CPU backend (2 images): max rel %.2e, rms "
                                   "rel %.2e\n",
                                   mx, rms);
                            printf("csv,cpu_check,fp32,%.3e,%.3e\n", mx, rms);
                        }
                    } else if (ref) {
                        rel_errors(check.out, ref, img * check_n, &mx, &rms);
                        printf("error %s vs fp32 (%d images, sigma over the schedule): max rel "
                               "%.2e, rms rel %.2e\n",
                               edm_precision_name(prec), check_n, mx, rms);
                        printf("csv,error,%s,%.3e,%.3e\n", edm_precision_name(prec), mx, rms);
                    }
                }
            }
            edm_denoiser_free(den);
            edm_backend_free(b);
            fflush(stdout);
        }
    }

    char desc_of_last[256] = "";
    /* 2. Speed, in the order asked (the default puts the fast precisions first, so a time
     * limit cuts fp32's large batches rather than the numbers that matter most). */
    printf("\n%-5s %-6s %6s %10s %10s %9s %9s %7s\n", "prec", "graphs", "batch", "ms/eval",
           "img/s@35", "ms/img35", "TFLOP/s", "%peak");
    for (int pi = 0; pi < np; pi++) {
        const enum edm_precision prec = (enum edm_precision)precs[pi];
        const char *pname = edm_precision_name(prec);
        for (int gi = 0; gi < ngm; gi++) {
            setenv("EDM_CUDA_GRAPHS", graph_modes[gi] ? "1" : "0", 1);
            edm_backend *b = NULL;
            if (cuda_backend(device, prec, &b, &err)) {
                fprintf(stderr, "bench_gpu: %s: %s\n", pname, err.message);
                continue;
            }
            const double peak = peak_tflops(edm_backend_describe(b), prec);
            snprintf(desc_of_last, sizeof desc_of_last, "%s", edm_backend_describe(b));
            if (gi == 0) printf("%-5s backend: %s\n", pname, desc_of_last);
            /* Graphs matter where launches dominate: small batches only. */
            int want = 1;
            for (int bi = 0; bi < nb; bi++)
                if (!graph_modes[gi] || batches[bi] <= graph_max) want = batches[bi] > want ? batches[bi] : want;
            /* The largest batch that fits: halve on out-of-memory. */
            edm_denoiser *den = NULL;
            int cap = want;
            while (cap >= 1 && edm_denoiser_new(model, b, cap, &den, &err)) {
                fprintf(stderr, "bench_gpu: %s max batch %d: %s\n", pname, cap, err.message);
                if (err.status != EDM_ENOMEM) break;
                cap /= 2;
            }
            if (!den) {
                edm_backend_free(b);
                continue;
            }
            for (int bi = 0; bi < nb; bi++) {
                const int n = batches[bi];
                if (graph_modes[gi] && n > graph_max) continue;
                if (n < 1 || n > cap) {
                    printf("%-5s %-6s %6d  (does not fit: max batch %d)\n", pname,
                           graph_modes[gi] ? "on" : "off", n, cap);
                    continue;
                }
                inputs in;
                inputs_make(&in, &cfg, n);
                int fail = 0;
                /* Warm-up: with graphs, pass 1 runs eagerly, pass 2 captures, pass 3 replays. */
                for (int w = 0; w < (graph_modes[gi] ? 3 : 1) && !fail; w++) fail = eval(den, &cfg, &in, n);
                double t[64];
                int reps = 0;
                double t0 = now();
                while (!fail && reps < 64 && (reps < 3 || now() - t0 < seconds)) {
                    double s = now();
                    fail = eval(den, &cfg, &in, n);
                    t[reps++] = now() - s;
                }
                if (!fail) {
                    const double ms = median(t, reps) * 1e3;
                    const double tf = flops * n / (ms * 1e-3) / 1e12;
                    printf("%-5s %-6s %6d %10.3f %10.1f %9.2f %9.1f %6.1f%%\n", pname,
                           graph_modes[gi] ? "on" : "off", n, ms, 1e3 * n / (ms * 35), ms * 35 / n,
                           tf, peak > 0 ? 100 * tf / peak : 0.0);
                    printf("csv,eval,%s,%d,%d,%.4f,%.2f,%.2f,%.2f\n", pname, graph_modes[gi], n,
                           ms, 1e3 * n / (ms * 35), tf, peak > 0 ? 100 * tf / peak : 0.0);
                }
                inputs_free(&in);
                fflush(stdout);
            }
            if (do_sample) {
                /* One image alone, 18-step Heun (35 evaluations), through the sampler API. */
                edm_sampler_params sp;
                edm_sampler_params_default(&sp);
                edm_plan *plan = NULL;
                if (edm_plan_new(model, &sp, &plan, &err) == EDM_OK) {
                    double ts[5];
                    int ok = 1;
                    for (int r = 0; r < 5 && ok; r++) {
                        edm_sample_init si = {.seed = (uint64_t)(100 + r), .class_label = -1};
                        edm_sample *s = NULL;
                        if (edm_sample_new(plan, &si, &s, &err)) {
                            ok = 0;
                            break;
                        }
                        double s0 = now();
                        int evaluated = 0, nfe = 0;
                        while (ok && edm_sample_pending(s)) {
                            if (edm_denoiser_step(den, &s, 1, &evaluated, &err)) ok = 0;
                            nfe += evaluated;
                        }
                        ts[r] = (now() - s0) * 1e3;
                        edm_sample_free(s);
                        if (ok && r == 0 && nfe != 35) printf("  (sampler ran %d evaluations)\n", nfe);
                    }
                    if (ok) {
                        double ms = median(ts, 5);
                        printf("%-5s %-6s one image alone, 35 NFE through the sampler: %.2f ms\n",
                               pname, graph_modes[gi] ? "on" : "off", ms);
                        printf("csv,sample1,%s,%d,%.3f\n", pname, graph_modes[gi], ms);
                    } else {
                        fprintf(stderr, "bench_gpu: sampling: %s\n", err.message);
                    }
                    edm_plan_free(plan);
                }
            }
            edm_denoiser_free(den);
            if (do_ops && gi == 0) op_benchmarks(b, pname);
            fflush(stdout);
            edm_backend_free(b);
            if (do_ops && gi == 0) {
                conv_variant_benchmarks(prec, device, pname);
                if (strstr(desc_of_last, "cudnn")) {
                    int nn = 0;
                    for (int bi = 0; bi < nb; bi++)
                        if (batches[bi] <= 512 && batches[bi] > nn) nn = batches[bi];
                    network_cudnn_benchmark(model, &cfg, prec, device, 1, seconds);
                    if (nn > 1) network_cudnn_benchmark(model, &cfg, prec, device, nn, seconds);
                }
            }
        }
    }
    free(ref);
    free(cpu_out);
    inputs_free(&check);
    edm_model_free(model);
    return 0;
}
