/*
 * test_cuda_ops.c - every op of the CUDA backend against the CPU backend, on the same random
 * inputs, in every precision; plus device selection, allocation failure and CUDA graphs.
 *
 * Without a usable GPU (no driver, no device, or a build without CUDA) every case is reported
 * SKIPPED and the program exits 0. (tests/gpu/sim/build.sh runs it against a host emulator
 * of CUDA, which exercises the same code paths on a machine without a GPU.)
 *
 * Tolerances, max|gpu - cpu| / max|cpu| over the output (check_max_rel):
 *   fp32 1e-5   (IEEE fp32 everywhere, only summation order differs)
 *   tf32 3e-3   (conv/attention GEMMs with 10-bit mantissa products)
 *   fp16 5e-3   (activations and conv weights stored in fp16, fp32 accumulation)
 *   bf16 3e-2   (the same with an 8-bit mantissa)
 * linear and embed are fp32 in every precision (spec 1.12) and always get 1e-5. The inputs
 * of both backends are the same fp32 values, so the narrow types' input rounding is part of
 * the measured error. Every output is poisoned with NaN before the op, so an element the op
 * fails to write shows up as an infinite error.
 *
 * Then small SongUNet (ddpmpp, ncsnpp) and DhariwalUNet networks with random weights run
 * through edm_denoiser_eval on both backends (with CUDA graphs on in one fp32 pass), with
 * network-level tolerances (net_tol): fp32 2e-5, tf32 1e-2, fp16 1e-2, bf16 5e-2.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "edm.h"
#include "ops.h"

static const char *const prec_name[] = {"fp32", "tf32", "fp16", "bf16"};
static const double prec_tol[] = {1e-5, 3e-3, 5e-3, 3e-2};
static const char *const op_names[] = {"conv2d", "fir_down", "fir_up",        "linear",
                                       "group_norm", "bias_residual", "concat", "attention",
                                       "embed",  "scale_rows", "precond_out", "graphs",
                                       "networks"};
#define N_OPS ((int)(sizeof op_names / sizeof op_names[0]))
#define TOL_F32 1e-5

/* ---- a pair of backends and operands that live on both ---------------------------------- */

#define MAX_LIVE 64

typedef struct operand {
    edm_tensor g, c; /* on the CUDA backend / on the CPU backend */
    float *host;     /* the values both were given */
    int64_t n;
} operand;

typedef struct pair {
    edm_backend *gpu, *cpu;
    enum edm_dtype act;
    int prec;
    double tol;
    operand *live[MAX_LIVE];
    int nlive;
    uint64_t rng;
} pair;

static float urand(pair *p) {
    p->rng = p->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(p->rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static void fill_rand(pair *p, float *x, int64_t n, float scale, float offset) {
    for (int64_t i = 0; i < n; i++) x[i] = offset + scale * urand(p);
}

/* A tensor of shape [n,c,h,w] on both backends; act: stored in the activation type on the
 * GPU. Filled with uniform(-1,1)*scale (data NULL) or with data. */
static operand *mk(pair *p, int n, int c, int h, int w, int act, const float *data, float scale) {
    operand *o = calloc(1, sizeof *o);
    if (!o || p->nlive == MAX_LIVE) {
        fprintf(stderr, "test: out of operand slots\n");
        exit(2);
    }
    p->live[p->nlive++] = o;
    o->n = (int64_t)n * c * h * w;
    o->host = malloc((size_t)o->n * sizeof(float));
    if (data) memcpy(o->host, data, (size_t)o->n * sizeof(float));
    else fill_rand(p, o->host, o->n, scale, 0.0f);
    edm_tensor t = {NULL, n, c, h, w, EDM_F32};
    o->c = t;
    o->g = t;
    o->g.dtype = act ? p->act : EDM_F32;
    o->c.data = p->cpu->ops->alloc(p->cpu->ctx, (size_t)o->n * 4);
    o->g.data = p->gpu->ops->alloc(p->gpu->ctx, (size_t)o->n * edm_dtype_size(o->g.dtype));
    if (!o->c.data || !o->g.data) {
        fprintf(stderr, "test: allocation of %lld elements failed\n", (long long)o->n);
        exit(2);
    }
    edm_op_upload(p->gpu, &o->g, o->host);
    edm_op_upload(p->cpu, &o->c, o->host);
    return o;
}

/* Overwrites an operand on both backends (NaN for an output about to be written). */
static void set(pair *p, operand *o, float v) {
    for (int64_t i = 0; i < o->n; i++) o->host[i] = v;
    edm_op_upload(p->gpu, &o->g, o->host);
    edm_op_upload(p->cpu, &o->c, o->host);
}

static void release(pair *p) {
    for (int i = 0; i < p->nlive; i++) {
        operand *o = p->live[i];
        p->gpu->ops->free(p->gpu->ctx, o->g.data);
        p->cpu->ops->free(p->cpu->ctx, o->c.data);
        free(o->host);
        free(o);
    }
    p->nlive = 0;
}

/* Reports a sticky failure of either backend (and clears it so later cases run). */
static int healthy(pair *p, const char *what) {
    int ok = 1;
    if (p->gpu->failed) {
        CHECK(0, "%s %s: cuda backend failed: %s", prec_name[p->prec], what, p->gpu->message);
        edm_backend_clear(p->gpu);
        ok = 0;
    }
    if (p->cpu->failed) {
        CHECK(0, "%s %s: cpu backend failed: %s", prec_name[p->prec], what, p->cpu->message);
        edm_backend_clear(p->cpu);
        ok = 0;
    }
    return ok;
}

/* Downloads out from both backends and compares. */
static void compare(pair *p, const char *what, const operand *out, double tol) {
    float *a = malloc((size_t)out->n * sizeof(float));
    float *b = malloc((size_t)out->n * sizeof(float));
    edm_op_download(p->gpu, a, &out->g);
    edm_op_download(p->cpu, b, &out->c);
    if (healthy(p, what)) {
        double rel = check_max_rel(a, b, out->n);
        CHECK(rel <= tol, "%s %s: max rel error %.3g > %.3g", prec_name[p->prec], what, rel, tol);
        if (getenv("EDM_TEST_VERBOSE"))
            fprintf(stderr, "  %-5s %-44s rel %.3g (tol %.3g)\n", prec_name[p->prec], what, rel,
                    tol);
    }
    free(a);
    free(b);
}

/* ---- ops ------------------------------------------------------------------------------- */

static void case_conv(pair *p, int N, int Ci, int H, int W, int Co, int k, int pad, int bias,
                      int res, float scale) {
    char what[128];
    snprintf(what, sizeof what, "conv2d N%d Ci%d %dx%d Co%d k%d pad%d%s%s scale %g", N, Ci, H, W,
             Co, k, pad, bias ? " bias" : "", res == 1 ? " res" : res == 2 ? " res=out" : "",
             scale);
    int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    operand *in = mk(p, N, Ci, H, W, 1, NULL, 1.0f);
    /* Weights scaled like a trained layer's (fan-in), so outputs stay O(1). */
    operand *w = mk(p, Co, Ci, k, k, 1, NULL, 1.0f / sqrtf((float)(Ci * k * k)));
    operand *bi = bias ? mk(p, Co, 1, 1, 1, 0, NULL, 0.5f) : NULL;
    operand *out = mk(p, N, Co, Ho, Wo, 1, NULL, 1.0f);
    operand *r = res == 1 ? mk(p, N, Co, Ho, Wo, 1, NULL, 1.0f) : NULL;
    if (res != 2) set(p, out, NAN); /* res == 2: out holds the residual */
    edm_op_conv2d(p->gpu, &out->g, &in->g, &w->g, bi ? &bi->g : NULL, pad,
                  res == 2 ? &out->g : r ? &r->g : NULL, scale);
    edm_op_conv2d(p->cpu, &out->c, &in->c, &w->c, bi ? &bi->c : NULL, pad,
                  res == 2 ? &out->c : r ? &r->c : NULL, scale);
    compare(p, what, out, p->tol);
    release(p);
}

static void test_conv(pair *p) {
    case_conv(p, 2, 5, 7, 9, 6, 3, 1, 1, 1, 0.7071068f);
    case_conv(p, 3, 3, 5, 5, 7, 1, 0, 0, 0, 1.0f);
    case_conv(p, 1, 6, 4, 6, 5, 1, 0, 1, 2, 0.7071068f);
    case_conv(p, 2, 4, 6, 5, 3, 3, 0, 1, 0, 1.0f);
    case_conv(p, 1, 3, 5, 4, 5, 3, 2, 0, 2, 1.0f);
    case_conv(p, 2, 3, 4, 4, 2, 1, 1, 1, 1, 0.5f);
    case_conv(p, 1, 2, 6, 6, 4, 4, 1, 1, 0, 1.0f); /* even kernel (fused-resample path) */
    /* 8 images of 4.7 MB of fp32 columns each: the 16 MiB scratch budget set in main splits
     * the batch into chunks (3 + 3 + 2); wide enough (K = 1152) to see accumulation error. */
    case_conv(p, 8, 128, 32, 32, 9, 3, 1, 1, 1, 1.0f);
}

static void case_fir(pair *p, int up, int N, int C, int H, int W, int L, int pad) {
    char what[96];
    snprintf(what, sizeof what, "%s N%d C%d %dx%d L%d pad%d", up ? "fir_up" : "fir_down", N, C, H,
             W, L, pad);
    float f[16];
    static const float r4[4] = {1, 3, 3, 1};
    for (int a = 0; a < L; a++)
        for (int b = 0; b < L; b++)
            f[a * L + b] = L == 4 ? r4[a] * r4[b] / 64.0f : 1.0f / (float)(L * L);
    operand *in = mk(p, N, C, H, W, 1, NULL, 1.0f);
    operand *flt = mk(p, 1, 1, L, L, 0, f, 0);
    int Ho = up ? 2 * H : (H + 2 * pad - L) / 2 + 1, Wo = up ? 2 * W : (W + 2 * pad - L) / 2 + 1;
    operand *out = mk(p, N, C, Ho, Wo, 1, NULL, 1.0f);
    set(p, out, NAN);
    if (up) {
        edm_op_fir_up(p->gpu, &out->g, &in->g, &flt->g, pad);
        edm_op_fir_up(p->cpu, &out->c, &in->c, &flt->c, pad);
    } else {
        edm_op_fir_down(p->gpu, &out->g, &in->g, &flt->g, pad);
        edm_op_fir_down(p->cpu, &out->c, &in->c, &flt->c, pad);
    }
    compare(p, what, out, p->tol);
    release(p);
}

static void test_fir(pair *p, int up) {
    case_fir(p, up, 2, 3, 8, 6, 2, 0);
    case_fir(p, up, 1, 5, 7, 9, 4, 1);
    case_fir(p, up, 3, 2, 5, 5, 4, 1);
    case_fir(p, up, 1, 2, 6, 4, 2, 0);
}

static void case_linear(pair *p, int N, int K, int O, int bias, float alpha, float beta, int silu) {
    char what[96];
    snprintf(what, sizeof what, "linear N%d K%d O%d%s alpha %g beta %g%s", N, K, O,
             bias ? " bias" : "", alpha, beta, silu ? " silu" : "");
    operand *in = mk(p, N, K, 1, 1, 0, NULL, 1.0f);
    operand *w = mk(p, O, K, 1, 1, 0, NULL, 1.0f / sqrtf((float)K));
    operand *b = bias ? mk(p, O, 1, 1, 1, 0, NULL, 0.5f) : NULL;
    operand *out = mk(p, N, O, 1, 1, 0, NULL, 1.0f);
    if (beta == 0.0f) set(p, out, NAN);
    edm_op_linear(p->gpu, &out->g, &in->g, &w->g, b ? &b->g : NULL, alpha, beta, silu);
    edm_op_linear(p->cpu, &out->c, &in->c, &w->c, b ? &b->c : NULL, alpha, beta, silu);
    compare(p, what, out, TOL_F32);
    release(p);
}

static void test_linear(pair *p) {
    case_linear(p, 3, 37, 19, 1, 1.0f, 0.0f, 0);
    case_linear(p, 1, 16, 64, 1, 1.0f, 0.0f, 1);
    case_linear(p, 5, 10, 33, 0, 3.1622777f, 1.0f, 0); /* map_label-style: scaled, accumulated */
    case_linear(p, 2, 64, 256, 1, 1.0f, 1.0f, 1);
    case_linear(p, 4, 9, 7, 0, 1.0f, 0.0f, 0);
}

static void case_gn(pair *p, int N, int C, int G, int H, int W, float eps, int pre, int ss,
                    int silu, int inplace, float offset) {
    char what[128];
    snprintf(what, sizeof what, "group_norm N%d C%d G%d %dx%d%s%s%s%s offset %g", N, C, G, H, W,
             pre ? " pre_add" : "", ss ? " scale_shift" : "", silu ? " silu" : "",
             inplace ? " in-place" : "", offset);
    operand *in = mk(p, N, C, H, W, 1, NULL, 1.0f);
    if (offset != 0.0f) {
        /* A large mean: the variance must not cancel. The CPU gets the values as the GPU
         * stores them, since at offset 20 a bf16 input is already off by 0.06. */
        fill_rand(p, in->host, in->n, 1.0f, offset);
        edm_op_upload(p->gpu, &in->g, in->host);
        edm_op_download(p->gpu, in->host, &in->g);
        edm_op_upload(p->cpu, &in->c, in->host);
    }
    operand *gamma = mk(p, C, 1, 1, 1, 0, NULL, 1.0f);
    operand *beta = mk(p, C, 1, 1, 1, 0, NULL, 1.0f);
    operand *pa = pre ? mk(p, N, C, 1, 1, 0, NULL, 1.0f) : NULL;
    operand *sc = ss ? mk(p, N, 2 * C, 1, 1, 0, NULL, 1.0f) : NULL;
    operand *out = inplace ? in : mk(p, N, C, H, W, 1, NULL, 1.0f);
    if (!inplace) set(p, out, NAN);
    edm_op_group_norm(p->gpu, &out->g, &in->g, &gamma->g, &beta->g, G, eps, pa ? &pa->g : NULL,
                      sc ? &sc->g : NULL, silu);
    edm_op_group_norm(p->cpu, &out->c, &in->c, &gamma->c, &beta->c, G, eps, pa ? &pa->c : NULL,
                      sc ? &sc->c : NULL, silu);
    compare(p, what, out, p->tol);
    release(p);
}

static void test_group_norm(pair *p) {
    case_gn(p, 2, 12, 4, 5, 3, 1e-5f, 0, 0, 0, 0, 0.0f);
    case_gn(p, 3, 8, 2, 7, 7, 1e-6f, 1, 0, 1, 0, 0.0f);
    case_gn(p, 1, 16, 4, 6, 5, 1e-5f, 0, 1, 1, 0, 0.0f);
    case_gn(p, 2, 6, 3, 4, 4, 1e-6f, 1, 1, 1, 1, 0.0f);
    case_gn(p, 1, 32, 8, 16, 16, 1e-6f, 0, 0, 1, 1, 0.0f);
    case_gn(p, 2, 4, 1, 9, 11, 1e-5f, 0, 0, 0, 0, 20.0f);
    case_gn(p, 1, 256, 32, 32, 32, 1e-6f, 1, 0, 1, 0, 0.0f); /* a CIFAR-10 32x32 block norm */
    case_gn(p, 2, 16, 1, 24, 24, 1e-5f, 1, 1, 1, 1, 0.0f);  /* 9216 per group: the 3-pass kernel */
    case_gn(p, 1, 12, 2, 40, 40, 1e-5f, 0, 0, 0, 0, 5.0f);  /* 9600 per group, large mean */
}

static void case_br(pair *p, int N, int C, int H, int W, int bias, int res, int alias, float s) {
    char what[96];
    snprintf(what, sizeof what, "bias_residual N%d C%d %dx%d%s%s%s scale %g", N, C, H, W,
             bias ? " bias" : "", res ? " res" : "",
             alias == 1 ? " out=in" : alias == 2 ? " out=res" : "", s);
    operand *in = mk(p, N, C, H, W, 1, NULL, 1.0f);
    operand *b = bias ? mk(p, C, 1, 1, 1, 0, NULL, 1.0f) : NULL;
    operand *r = res ? mk(p, N, C, H, W, 1, NULL, 1.0f) : NULL;
    operand *out = alias == 1 ? in : alias == 2 ? r : mk(p, N, C, H, W, 1, NULL, 1.0f);
    if (!alias) set(p, out, NAN);
    edm_op_bias_residual(p->gpu, &out->g, &in->g, b ? &b->g : NULL, r ? &r->g : NULL, s);
    edm_op_bias_residual(p->cpu, &out->c, &in->c, b ? &b->c : NULL, r ? &r->c : NULL, s);
    compare(p, what, out, p->tol);
    release(p);
}

static void test_bias_residual(pair *p) {
    case_br(p, 2, 5, 3, 7, 1, 1, 0, 0.7071068f);
    case_br(p, 1, 3, 4, 4, 1, 0, 1, 1.0f);
    case_br(p, 3, 2, 5, 3, 0, 1, 2, 0.5f);
    case_br(p, 2, 7, 1, 1, 1, 1, 1, 2.0f);
}

static void test_concat(pair *p) {
    static const int shapes[][5] = {{2, 3, 5, 4, 5}, {1, 1, 7, 3, 3}, {3, 4, 2, 6, 1}};
    for (int s = 0; s < 3; s++) {
        int N = shapes[s][0], Ca = shapes[s][1], Cb = shapes[s][2], H = shapes[s][3],
            W = shapes[s][4];
        char what[96];
        snprintf(what, sizeof what, "concat N%d Ca%d Cb%d %dx%d", N, Ca, Cb, H, W);
        operand *a = mk(p, N, Ca, H, W, 1, NULL, 1.0f);
        operand *b = mk(p, N, Cb, H, W, 1, NULL, 1.0f);
        operand *out = mk(p, N, Ca + Cb, H, W, 1, NULL, 1.0f);
        set(p, out, NAN);
        edm_op_concat(p->gpu, &out->g, &a->g, &b->g);
        edm_op_concat(p->cpu, &out->c, &a->c, &b->c);
        compare(p, what, out, p->tol);
        release(p);
    }
}

static void case_attn(pair *p, int N, int C, int heads, int H, int W, float scale) {
    char what[96];
    snprintf(what, sizeof what, "attention N%d C%d heads%d %dx%d qkv scale %g", N, C, heads, H, W,
             scale);
    operand *qkv = mk(p, N, 3 * C, H, W, 1, NULL, scale);
    operand *out = mk(p, N, C, H, W, 1, NULL, 1.0f);
    set(p, out, NAN);
    edm_op_attention(p->gpu, &out->g, &qkv->g, heads);
    edm_op_attention(p->cpu, &out->c, &qkv->c, heads);
    compare(p, what, out, p->tol);
    release(p);
}

static void test_attention(pair *p) {
    case_attn(p, 2, 8, 2, 3, 5, 1.0f);
    case_attn(p, 1, 6, 1, 4, 4, 2.0f);
    case_attn(p, 3, 12, 3, 2, 3, 1.0f);
    case_attn(p, 2, 32, 1, 8, 8, 3.0f); /* peaked softmax */
    case_attn(p, 1, 64, 1, 16, 16, 1.0f); /* a CIFAR-10 16x16 attention, narrower */
}

static void test_embed(pair *p) {
    for (int swap = 0; swap < 2; swap++) {
        for (int fourier = 0; fourier < 2; fourier++) {
            int N = 5, half = fourier ? 8 : 7;
            char what[96];
            snprintf(what, sizeof what, "embed N%d half%d %s%s", N, half,
                     fourier ? "fourier" : "positional", swap ? " swap" : "");
            float x[5] = {-0.9f, 0.013f, 1.7f, 2.5f, -3.1f};
            float f[8];
            for (int i = 0; i < half; i++)
                f[i] = fourier ? 2.0f * 3.14159265f * 16.0f * urand(p) /* |x f| ~ hundreds */
                               : powf(1.0f / 10000.0f, (float)i / (float)(half - 1));
            if (!fourier) x[3] = 998.0f; /* VP's c_noise reaches 999 */
            operand *xo = mk(p, N, 1, 1, 1, 0, x, 0);
            operand *fo = mk(p, half, 1, 1, 1, 0, f, 0);
            operand *out = mk(p, N, 2 * half, 1, 1, 0, NULL, 1.0f);
            set(p, out, NAN);
            edm_op_embed(p->gpu, &out->g, &xo->g, &fo->g, swap);
            edm_op_embed(p->cpu, &out->c, &xo->c, &fo->c, swap);
            compare(p, what, out, TOL_F32);
            release(p);
        }
    }
}

static void test_scale_rows(pair *p) {
    for (int inplace = 0; inplace < 2; inplace++) {
        int N = 3, C = 3, H = 5, W = 7;
        char what[96];
        snprintf(what, sizeof what, "scale_rows N%d C%d %dx%d%s", N, C, H, W,
                 inplace ? " in-place" : " f32 in");
        /* c_in * x: x is f32, the output goes into the image path (act). In place: act. */
        operand *in = mk(p, N, C, H, W, inplace, NULL, 1.0f);
        operand *coef = mk(p, N, 1, 1, 1, 0, NULL, 2.0f);
        operand *out = inplace ? in : mk(p, N, C, H, W, 1, NULL, 1.0f);
        if (!inplace) set(p, out, NAN);
        edm_op_scale_rows(p->gpu, &out->g, &in->g, &coef->g);
        edm_op_scale_rows(p->cpu, &out->c, &in->c, &coef->c);
        compare(p, what, out, p->tol);
        release(p);
    }
}

static void test_precond_out(pair *p) {
    for (int twice = 1; twice <= 2; twice++) {
        int N = 3, C = 3, H = 4, W = 6;
        char what[96];
        snprintf(what, sizeof what, "precond_out N%d C%d F channels %d %dx%d", N, C, twice * C, H,
                 W);
        operand *x = mk(p, N, C, H, W, 0, NULL, 3.0f);
        operand *F = mk(p, N, twice * C, H, W, 1, NULL, 1.0f);
        operand *cs = mk(p, N, 1, 1, 1, 0, NULL, 1.0f);
        operand *co = mk(p, N, 1, 1, 1, 0, NULL, 1.0f);
        operand *out = mk(p, N, C, H, W, 0, NULL, 1.0f);
        set(p, out, NAN);
        edm_op_precond_out(p->gpu, &out->g, &x->g, &F->g, &cs->g, &co->g);
        edm_op_precond_out(p->cpu, &out->c, &x->c, &F->c, &cs->c, &co->c);
        compare(p, what, out, p->tol);
        release(p);
    }
}

/* ---- a small forward pass through the graph hooks ---------------------------------------- */

static int hook(edm_backend *b, int begin, int n) {
    char msg[EDM_OPS_MSG] = "";
    int (*fn)(void *, int, char *) = begin ? b->ops->forward_begin : b->ops->forward_end;
    if (!fn) return 0;
    if (fn(b->ctx, n, msg)) {
        edm_backend_fail(b, begin ? "forward_begin" : "forward_end", "%s", msg);
        return 1;
    }
    return 0;
}

/* x -> conv3x3 -> group_norm+silu -> 1x1 qkv -> attention -> conv1x1 (+x residual, scaled). */
static void pass(edm_backend *b, edm_tensor *t, int N, float scale) {
    /* t: 0 x, 1 w0, 2 b0, 3 h, 4 gamma, 5 beta, 6 wqkv, 7 qkv, 8 att, 9 wp, 10 out */
    edm_op_conv2d(b, &t[3], &t[0], &t[1], &t[2], 1, NULL, 1.0f);
    edm_op_group_norm(b, &t[3], &t[3], &t[4], &t[5], 2, 1e-6f, NULL, NULL, 1);
    edm_op_conv2d(b, &t[7], &t[3], &t[6], NULL, 0, NULL, 1.0f);
    edm_op_attention(b, &t[8], &t[7], 1);
    edm_op_conv2d(b, &t[10], &t[8], &t[9], NULL, 0, &t[3], scale);
    (void)N;
}

static void graph_counters(const edm_backend *b, long *captures, long *replays, long *fallbacks) {
    *captures = *replays = *fallbacks = 0;
    edm_backend_counter(b, "graph_captures", captures, NULL);
    edm_backend_counter(b, "graph_replays", replays, NULL);
    edm_backend_counter(b, "graph_fallbacks", fallbacks, NULL);
}

static void test_graphs(pair *p) {
    const int N = 2, C = 4, H = 6, W = 6;
    operand *o[11];
    o[0] = mk(p, N, C, H, W, 1, NULL, 1.0f);
    o[1] = mk(p, C, C, 3, 3, 1, NULL, 0.3f);
    o[2] = mk(p, C, 1, 1, 1, 0, NULL, 0.5f);
    o[3] = mk(p, N, C, H, W, 1, NULL, 1.0f);
    o[4] = mk(p, C, 1, 1, 1, 0, NULL, 1.0f);
    o[5] = mk(p, C, 1, 1, 1, 0, NULL, 1.0f);
    o[6] = mk(p, 3 * C, C, 1, 1, 1, NULL, 0.5f);
    o[7] = mk(p, N, 3 * C, H, W, 1, NULL, 1.0f);
    o[8] = mk(p, N, C, H, W, 1, NULL, 1.0f);
    o[9] = mk(p, C, C, 1, 1, 1, NULL, 0.5f);
    o[10] = mk(p, N, C, H, W, 1, NULL, 1.0f);
    edm_tensor tg[11], tc[11];
    for (int i = 0; i < 11; i++) tg[i] = o[i]->g, tc[i] = o[i]->c;
    long cap0, rep0, fb0, cap1, rep1, fb1;
    graph_counters(p->gpu, &cap0, &rep0, &fb0);
    /* Passes 1 (eager, learning), 2 (captured), 3-4 (replayed), each with fresh inputs; pass 5
     * changes its last op (out_scale): the replay diverges there and must fall back to running
     * the recorded ops eagerly, with a correct result and no error. */
    for (int it = 0; it < 5; it++) {
        char what[64];
        float scale = it == 4 ? 0.5f : 0.7071068f;
        snprintf(what, sizeof what, "forward pass %d%s", it + 1,
                 it == 4 ? " (changed op sequence)" : "");
        fill_rand(p, o[0]->host, o[0]->n, 1.0f, 0.0f);
        edm_op_upload(p->gpu, &tg[0], o[0]->host);
        edm_op_upload(p->cpu, &tc[0], o[0]->host);
        set(p, o[10], NAN);
        if (hook(p->gpu, 1, N) == 0) {
            pass(p->gpu, tg, N, scale);
            hook(p->gpu, 0, N);
        }
        pass(p->cpu, tc, N, scale);
        healthy(p, what);
        compare(p, what, o[10], p->tol);
    }
    graph_counters(p->gpu, &cap1, &rep1, &fb1);
    if (strstr(p->gpu->description, "graphs"))
        CHECK(cap1 - cap0 == 1 && rep1 - rep0 == 2 && fb1 - fb0 == 1,
              "%s graphs: %ld captures, %ld replays, %ld fallbacks (want 1, 2, 1)",
              prec_name[p->prec], cap1 - cap0, rep1 - rep0, fb1 - fb0);
    else
        CHECK(cap1 == 0 && rep1 == 0 && fb1 == 0, "graphs off but %ld/%ld/%ld", cap1, rep1, fb1);
    release(p);
}

/* ---- whole networks through the denoiser --------------------------------------------------- */

/* Small versions of the published families (random weights): every op in its real context,
 * the engine's workspace and the forward hooks (graphs) included. */
static int small_config(int which, edm_config *cfg) {
    edm_error err;
    static const char *const presets[] = {"cifar10-ddpmpp", "cifar10-ncsnpp", "imagenet64-adm"};
    if (edm_config_preset(presets[which], cfg, &err)) {
        CHECK(0, "preset %s: %s", presets[which], err.message);
        return 1;
    }
    cfg->img_resolution = 16;
    cfg->num_blocks = 1;
    cfg->num_levels = 2;
    if (which < 2) {
        cfg->model_channels = 16;
        cfg->channel_mult[0] = 1, cfg->channel_mult[1] = 2;
        cfg->num_attn_res = 1, cfg->attn_resolutions[0] = 8;
    } else { /* DhariwalUNet: heads = channels / 64, so 64 channels at 8x8 get attention */
        cfg->model_channels = 32;
        cfg->channel_mult[0] = 1, cfg->channel_mult[1] = 2;
        cfg->num_attn_res = 1, cfg->attn_resolutions[0] = 8;
        cfg->label_dim = 10;
    }
    return 0;
}

/* Network-level tolerances: errors compound over ~20-40 ops. */
static const double net_tol[] = {2e-5, 1e-2, 1e-2, 5e-2};

static void test_networks(pair *p) {
    static const char *const names[] = {"SongUNet ddpmpp", "SongUNet ncsnpp", "DhariwalUNet"};
    long cap0, rep0, fb0, cap1, rep1, fb1;
    graph_counters(p->gpu, &cap0, &rep0, &fb0);
    for (int which = 0; which < 3; which++) {
        edm_config cfg;
        if (small_config(which, &cfg)) continue;
        edm_model *model = NULL;
        edm_denoiser *dg = NULL, *dc = NULL;
        edm_error err;
        if (edm_model_new_random(&cfg, 5 + which, &model, &err) ||
            edm_denoiser_new(model, p->gpu, 3, &dg, &err) ||
            edm_denoiser_new(model, p->cpu, 3, &dc, &err)) {
            CHECK(0, "%s %s: setup: %s", prec_name[p->prec], names[which], err.message);
            edm_denoiser_free(dg), edm_denoiser_free(dc), edm_model_free(model);
            continue;
        }
        const int n = 3, img = cfg.img_channels * cfg.img_resolution * cfg.img_resolution;
        float *x = malloc(sizeof(float) * img * n), *a = malloc(sizeof(float) * img * n),
              *b = malloc(sizeof(float) * img * n);
        float *labels = calloc((size_t)n * (cfg.label_dim ? cfg.label_dim : 1), sizeof(float));
        double sigma[3];
        /* Four evaluations with fresh inputs: eager, captured, replayed twice (graphs on). */
        for (int it = 0; it < 4; it++) {
            static const double sig[4][3] = {
                {80, 1.0, 0.002}, {12.9, 0.3, 5.3}, {0.06, 40.8, 1.9}, {2.5, 0.14, 19.4}};
            fill_rand(p, x, (int64_t)img * n, 1.0f, 0.0f);
            for (int i = 0; i < n; i++) {
                sigma[i] = sig[it][i];
                for (int k = 0; k < img; k++) x[i * img + k] *= (float)sigma[i];
                if (cfg.label_dim) {
                    memset(labels + (size_t)i * cfg.label_dim, 0, sizeof(float) * cfg.label_dim);
                    labels[(size_t)i * cfg.label_dim + (i + it) % cfg.label_dim] = 1;
                }
            }
            char what[96];
            snprintf(what, sizeof what, "%s D(x; sigma), evaluation %d", names[which], it + 1);
            enum edm_status sg = edm_denoiser_eval(dg, n, x, sigma, cfg.label_dim ? labels : NULL,
                                                   NULL, a, &err);
            CHECK(sg == EDM_OK, "%s %s: cuda: %s", prec_name[p->prec], what, err.message);
            enum edm_status sc = edm_denoiser_eval(dc, n, x, sigma, cfg.label_dim ? labels : NULL,
                                                   NULL, b, &err);
            CHECK(sc == EDM_OK, "%s %s: cpu: %s", prec_name[p->prec], what, err.message);
            if (sg || sc) break;
            double rel = check_max_rel(a, b, (long)img * n);
            CHECK(rel <= net_tol[p->prec], "%s %s: max rel error %.3g > %.3g", prec_name[p->prec],
                  what, rel, net_tol[p->prec]);
            if (getenv("EDM_TEST_VERBOSE"))
                fprintf(stderr, "  %-5s %-44s rel %.3g (tol %.3g)\n", prec_name[p->prec], what, rel,
                        net_tol[p->prec]);
        }
        free(x), free(a), free(b), free(labels);
        edm_denoiser_free(dg);
        edm_denoiser_free(dc);
        edm_model_free(model);
    }
    graph_counters(p->gpu, &cap1, &rep1, &fb1);
    if (strstr(p->gpu->description, "graphs")) /* per network: learn, capture, replay x2 */
        CHECK(cap1 - cap0 == 3 && rep1 - rep0 == 6 && fb1 - fb0 == 0,
              "%s networks with graphs: %ld captures, %ld replays, %ld fallbacks (want 3, 6, 0)",
              prec_name[p->prec], cap1 - cap0, rep1 - rep0, fb1 - fb0);
}

/* ---- device selection and memory --------------------------------------------------------- */

static void test_device(void) {
    edm_backend_options opts;
    edm_backend_options_default(&opts);
    opts.name = "cuda";
    opts.device = 4096;
    edm_backend *b = NULL;
    edm_error err;
    enum edm_status st = edm_backend_new(&opts, &b, &err);
    CHECK(st == EDM_EINVAL && b == NULL && strstr(err.message, "does not exist"),
          "device 4096: status %d, message '%s'", (int)st, err.message);

    opts.device = 0;
    st = edm_backend_new(&opts, &b, &err);
    CHECK(st == EDM_OK, "device 0: %s", err.message);
    if (st != EDM_OK) return;
    size_t f = 0, t = 0;
    CHECK(edm_backend_mem_info(b, &f, &t, &err) == EDM_OK && t > 0 && f <= t,
          "mem_info: free %zu total %zu", f, t);
    /* An impossible allocation fails cleanly and leaves the backend usable. */
    void *huge = b->ops->alloc(b->ctx, (size_t)1 << 62);
    CHECK(huge == NULL, "a 4 EiB allocation succeeded");
    void *ok = b->ops->alloc(b->ctx, 1024);
    CHECK(ok != NULL, "allocation after a failed one");
    float one = 1.0f, back = 0.0f;
    edm_tensor t1 = {ok, 1, 1, 1, 1, EDM_F32};
    edm_op_upload(b, &t1, &one);
    edm_op_download(b, &back, &t1);
    CHECK(!b->failed && back == 1.0f && !b->device_lost, "round trip after a failed allocation: %s",
          b->message);
    b->ops->free(b->ctx, ok);
    /* A workspace that cannot fit (terabytes): out of memory, with the batch that would. */
    edm_config cfg;
    edm_model *model = NULL;
    edm_denoiser *den = NULL;
    if (!small_config(0, &cfg)) {
        cfg.img_resolution = 256;
        if (edm_model_new_random(&cfg, 1, &model, &err) == EDM_OK) {
            st = edm_denoiser_new(model, b, 65536, &den, &err);
            const char *fits = strstr(err.message, "largest batch that fits is about ");
            CHECK(st == EDM_ENOMEM && !den && fits && atol(fits + 33) < 65536,
                  "batch 65536 at 256x256: status %d, message '%s'", (int)st, err.message);
            edm_denoiser_free(den);
            edm_model_free(model);
        }
    }
    fprintf(stderr, "cuda backend: %s\n", edm_backend_describe(b));
    edm_backend_free(b);
}

/* ---- main ---------------------------------------------------------------------------------- */

/* EDM_TEST_ONLY=conv,networks runs only those parts (development; unset: everything). */
static int want(const char *part) {
    const char *only = getenv("EDM_TEST_ONLY");
    if (!only || !*only) return 1;
    size_t n = strlen(part);
    for (const char *s = only; (s = strstr(s, part)) != NULL; s += n)
        if ((s == only || s[-1] == ',') && (s[n] == ',' || s[n] == '\0')) return 1;
    return 0;
}

int main(void) {
    edm_backend_info bi;
    if (edm_backend_lookup("cuda", &bi, NULL) != EDM_OK || bi.devices == 0) {
        const char *why = bi.compiled ? "no usable CUDA device (driver, device, or "
                                        "compute capability < 8.0)"
                                      : "built without CUDA (make CUDA=1)";
        for (int pr = 0; pr < 4; pr++)
            for (int op = 0; op < N_OPS; op++) SKIP("%s %s: %s", prec_name[pr], op_names[op], why);
        SKIP("device selection and memory: %s", why);
        return check_finish();
    }
    /* A small scratch budget, so conv2d and attention split their batches into chunks. */
    setenv("EDM_CUDA_SCRATCH_MB", "16", 1);
    test_device();

    edm_backend_options copts;
    edm_backend_options_default(&copts);
    copts.name = "cpu";
    edm_backend *cpu = NULL;
    edm_error err;
    if (edm_backend_new(&copts, &cpu, &err) != EDM_OK) {
        CHECK(0, "cpu backend: %s", err.message);
        return check_finish();
    }
    /* Backend configurations: every precision with everything; graphs on in fp32 and fp16;
     * where cuDNN serves the convolutions (tf32/fp16/bf16, if found), the im2col + cuBLAS
     * path again for convolutions and networks. */
    static const struct {
        int prec, graphs, im2col;
        const char *parts; /* NULL: every part */
    } configs[] = {
        {0, 0, 0, NULL},       {0, 1, 0, "graphs,networks"}, {1, 0, 0, NULL},
        {1, 0, 1, "conv"},     {2, 0, 0, NULL},              {2, 0, 1, "conv,networks"},
        {2, 1, 0, "graphs,networks"}, {3, 0, 0, NULL},       {3, 0, 1, "conv"},
    };
    for (size_t ci = 0; ci < sizeof configs / sizeof configs[0]; ci++) {
        const int pr = configs[ci].prec;
        setenv("EDM_CUDA_GRAPHS", configs[ci].graphs ? "1" : "0", 1);
        if (configs[ci].im2col) setenv("EDM_CUDA_CONV", "im2col", 1);
        else setenv("EDM_CUDA_CONV", "cudnn", 1); /* cuDNN when present (opt-in path) */
        edm_backend_options gopts;
        edm_backend_options_default(&gopts);
        gopts.name = "cuda";
        gopts.precision = (enum edm_precision)pr;
        pair p;
        memset(&p, 0, sizeof p);
        p.cpu = cpu;
        p.prec = pr;
        p.tol = prec_tol[pr];
        p.rng = 0x9e3779b97f4a7c15ull + (uint64_t)ci;
        /* cuDNN is optional: where it cannot be loaded, the config runs on im2col + cuBLAS. */
        if (!configs[ci].im2col && edm_backend_new(&gopts, &p.gpu, &err) != EDM_OK) {
            fprintf(stderr, "note: %s: %s; using im2col + cuBLAS\n", prec_name[pr], err.message);
            unsetenv("EDM_CUDA_CONV");
            p.gpu = NULL;
        }
        if (!p.gpu && edm_backend_new(&gopts, &p.gpu, &err) != EDM_OK) {
            CHECK(0, "%s: cuda backend: %s", prec_name[pr], err.message);
            continue;
        }
        fprintf(stderr, "config %zu: %s\n", ci, edm_backend_describe(p.gpu));
        p.act = p.gpu->act_dtype;
        CHECK(p.gpu->precision == (enum edm_precision)pr &&
                  p.act == (pr == 2 ? EDM_F16 : pr == 3 ? EDM_BF16 : EDM_F32),
              "%s: precision %d act dtype %d", prec_name[pr], (int)p.gpu->precision, (int)p.act);
        const char *parts = configs[ci].parts;
#define PART(name) (want(name) && (!parts || strstr(parts, name)))
        if (PART("conv")) test_conv(&p);
        if (PART("fir")) test_fir(&p, 0), test_fir(&p, 1);
        if (PART("linear")) test_linear(&p);
        if (PART("group_norm")) test_group_norm(&p);
        if (PART("bias_residual")) test_bias_residual(&p);
        if (PART("concat")) test_concat(&p);
        if (PART("attention")) test_attention(&p);
        if (PART("embed")) test_embed(&p);
        if (PART("scale_rows")) test_scale_rows(&p);
        if (PART("precond_out")) test_precond_out(&p);
        if (PART("graphs")) test_graphs(&p);
        if (PART("networks")) test_networks(&p);
#undef PART
        CHECK(!p.gpu->device_lost, "%s: device lost", prec_name[pr]);
        edm_backend_free(p.gpu);
    }
    unsetenv("EDM_CUDA_CONV");
    edm_backend_free(cpu);
    return check_finish();
}
