/*
 * test_ops.c - every op of core/ops.h, through the front-end (edm_op_*), against the plain
 * double-accumulating references in op_reference.c, on every backend this machine has:
 * the CPU backend with 1, 3 and all threads (odd team splits), and CUDA (fp32) when a usable
 * GPU is present.
 *
 * Random data, odd shapes (batch 1 and 3, channel counts not multiples of 4 or 32, H != W),
 * both FIR filters and a non-symmetric one, every optional operand, every alias the ops.h
 * comments allow. Each output is poisoned with NaN before the op, so an element the backend
 * forgets to write fails the comparison. Errors are reported as max-abs and max-rel
 * (max-abs / max |reference|) against one tolerance table. Also: the front-end rejects a
 * shape mismatch with a sticky failure and later ops are no-ops; the CPU constructor refuses
 * non-fp32 precisions; the CPU fast exp is within 2 ulp of exp().
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_internal.h" /* the CPU exp and silu kernels, checked directly */
#include "edm.h"
#include "op_reference.h"
#include "ops.h"

/* ---- tolerances: fp32 backends against the double reference (max-abs / max |ref|) ------- */

static const struct {
    const char *op;
    double rel;
} tolerances[] = {
    {"conv2d", 1e-5},     {"fir_down", 1e-6},      {"fir_up", 1e-6},      {"linear", 1e-5},
    {"group_norm", 1e-5}, {"bias_residual", 1e-6}, {"concat", 0.0},       {"attention", 1e-5},
    {"embed", 1e-6},      {"scale_rows", 1e-6},    {"precond_out", 1e-6}, {"upload", 0.0},
};

static double tolerance(const char *op) {
    for (size_t i = 0; i < sizeof tolerances / sizeof tolerances[0]; i++)
        if (strcmp(tolerances[i].op, op) == 0) return tolerances[i].rel;
    return 0.0;
}

/* ---- test tensors: backend memory + a host copy ------------------------------------------- */

static edm_backend *B; /* the backend under test */
static const char *B_label;

typedef struct tb {
    edm_tensor t;
    float *h; /* host values (what was uploaded, or what was downloaded) */
    int64_t numel;
} tb;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

static tb tb_new(int n, int c, int h, int w) {
    tb x;
    memset(&x, 0, sizeof x);
    x.t.n = n, x.t.c = c, x.t.h = h, x.t.w = w;
    x.t.dtype = EDM_F32;
    x.numel = (int64_t)n * c * h * w;
    x.t.data = B->ops->alloc(B->ctx, (size_t)x.numel * sizeof(float));
    x.h = calloc((size_t)x.numel, sizeof(float));
    if (!x.t.data || !x.h) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return x;
}

/* Uniform values in [lo, hi), uploaded. */
static tb tb_rand(int n, int c, int h, int w, double lo, double hi) {
    tb x = tb_new(n, c, h, w);
    for (int64_t i = 0; i < x.numel; i++) x.h[i] = (float)(lo + (hi - lo) * urand());
    edm_op_upload(B, &x.t, x.h);
    return x;
}

static tb tb_from(int n, int c, int h, int w, const float *v) {
    tb x = tb_new(n, c, h, w);
    memcpy(x.h, v, (size_t)x.numel * sizeof(float));
    edm_op_upload(B, &x.t, x.h);
    return x;
}

/* NaN-fills the backend copy, so unwritten output elements show up. */
static void tb_poison(tb *x) {
    float *nan = malloc((size_t)x->numel * sizeof(float));
    for (int64_t i = 0; i < x->numel; i++) nan[i] = NAN;
    edm_op_upload(B, &x->t, nan);
    free(nan);
}

static void tb_fetch(tb *x) {
    edm_op_download(B, x->h, &x->t);
    B->ops->sync(B->ctx, (char[EDM_OPS_MSG]){0});
}

static void tb_free(tb *x) {
    B->ops->free(B->ctx, x->t.data);
    free(x->h);
    memset(x, 0, sizeof *x);
}

static float *copy_of(const tb *x) {
    float *c = malloc((size_t)x->numel * sizeof(float));
    memcpy(c, x->h, (size_t)x->numel * sizeof(float));
    return c;
}

/* Downloads `got`, compares with ref[], prints one line, counts one check. */
static void expect(const char *op, const char *what, tb *got, const float *ref) {
    tb_fetch(got);
    double max_abs = 0, max_ref = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < got->numel; i++) {
        double d = fabs((double)got->h[i] - (double)ref[i]);
        if (!(d == d) || isinf(got->h[i]))
            bad++;
        else if (d > max_abs)
            max_abs = d;
        if (fabs((double)ref[i]) > max_ref) max_ref = fabs((double)ref[i]);
    }
    double rel = max_abs / (max_ref > 1e-30 ? max_ref : 1e-30);
    double tol = tolerance(op);
    int ok = !B->failed && bad == 0 && rel <= tol;
    printf("%-5s %-13s %-46s max_abs %.2e max_rel %.2e (tol %.0e)%s\n", B_label, op, what, max_abs,
           rel, tol, ok ? "" : "  <-- FAIL");
    CHECK(ok, "%s %s %s: %lld non-finite, max_rel %.3e > %.0e%s%s", B_label, op, what,
          (long long)bad, rel, tol, B->failed ? "; backend failed: " : "",
          B->failed ? B->message : "");
    if (B->failed) edm_backend_clear(B);
}

/* ---- ops ------------------------------------------------------------------------------------- */

static void case_conv(int N, int Ci, int H, int W, int Co, int k, int pad, int has_bias,
                      int res_mode, float scale) {
    /* res_mode: 0 none, 1 separate tensor, 2 residual is out itself */
    const int Ho = H + 2 * pad - k + 1, Wo = W + 2 * pad - k + 1;
    tb in = tb_rand(N, Ci, H, W, -1, 1);
    tb w = tb_rand(Co, Ci, k, k, -0.5, 0.5);
    tb bias = tb_rand(1, Co, 1, 1, -1, 1);
    tb out = tb_new(N, Co, Ho, Wo);
    tb res = tb_rand(N, Co, Ho, Wo, -2, 2);
    float *ref = malloc((size_t)out.numel * sizeof(float));
    ref_conv2d(ref, in.h, w.h, has_bias ? bias.h : NULL, res_mode ? res.h : NULL, scale, N, Ci, H,
               W, Co, k, pad);
    if (res_mode == 2)
        edm_op_upload(B, &out.t, res.h); /* out holds the residual */
    else
        tb_poison(&out);
    edm_op_conv2d(B, &out.t, &in.t, &w.t, has_bias ? &bias.t : NULL, pad,
                  res_mode == 1   ? &res.t
                  : res_mode == 2 ? &out.t
                                  : NULL,
                  scale);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] k%d p%d ->%d%s%s s%.3g", N, Ci, H, W, k, pad, Co,
             has_bias ? " bias" : "",
             res_mode == 1   ? " res"
             : res_mode == 2 ? " res=out"
                             : "",
             (double)scale);
    expect("conv2d", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&w), tb_free(&bias), tb_free(&out), tb_free(&res);
}

static void test_conv2d(void) {
    case_conv(1, 3, 5, 7, 5, 3, 1, 1, 0, 1.0f);
    case_conv(3, 6, 9, 4, 7, 3, 1, 1, 1, 0.70710678f);
    case_conv(3, 6, 9, 4, 7, 3, 1, 1, 2, 0.70710678f);   /* residual aliases out, small map */
    case_conv(3, 13, 6, 5, 9, 1, 0, 1, 1, 1.0f);         /* 1x1 */
    case_conv(2, 10, 17, 19, 6, 1, 0, 0, 0, 1.0f);       /* 1x1, P >= 256: no im2col */
    case_conv(2, 10, 17, 19, 6, 1, 0, 1, 2, 0.5f);       /* ... with residual = out */
    case_conv(3, 5, 20, 18, 6, 3, 1, 1, 1, 1.0f);        /* P = 360: one chunk per image */
    case_conv(1, 4, 24, 27, 6, 3, 1, 0, 0, 1.0f);        /* P = 648 > chunk: split image */
    case_conv(2, 4, 24, 27, 3, 3, 1, 1, 2, 0.3f);        /* ... residual = out */
    case_conv(3, 5, 7, 6, 4, 5, 2, 1, 0, 1.0f);          /* general k */
    case_conv(3, 5, 7, 6, 4, 2, 0, 1, 0, 1.0f);          /* even k, no pad */
    case_conv(2, 3, 8, 9, 4, 3, 0, 0, 1, 1.0f);          /* valid conv: Ho = H - 2 */
    case_conv(2, 3, 8, 9, 4, 3, 2, 1, 0, 1.0f);          /* pad 2 (the fused aux_residual down) */
    case_conv(2, 3, 4, 5, 4, 1, 1, 1, 0, 2.0f);          /* 1x1 with padding */
    case_conv(5, 33, 4, 4, 17, 3, 1, 1, 1, 0.70710678f); /* 4x4 level, images span chunks */
    case_conv(2, 2, 40, 30, 5, 3, 1, 1, 1, 1.0f);        /* P = 1200: chunks split images */
    case_conv(3, 2, 40, 30, 5, 3, 1, 1, 2, 0.5f);        /* ... residual = out */
    case_conv(2, 460, 24, 24, 4, 3, 1, 1, 0, 1.0f);      /* deep K: narrower chunks */
    case_conv(3, 7, 16, 16, 5, 1, 0, 1, 1, 1.0f);        /* 1x1 at 16x16: in place, per image */
    case_conv(5, 7, 8, 8, 5, 1, 0, 1, 2, 1.0f);          /* 1x1 at 8x8: spans images, res=out */
}

static const float f_11[4] = {0.25f, 0.25f, 0.25f, 0.25f};
static float f_1331[16];
static const float f_odd[9] = {0.1f, -0.2f, 0.3f, 0.05f, 0.5f, -0.15f, 0.2f, 0.0f, 0.4f};

static void init_filters(void) {
    const float r[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) f_1331[a * 4 + b] = r[a] * r[b] / 64.0f;
}

static void case_fir(int up, int N, int C, int H, int W, const float *f, int L, int pad) {
    tb in = tb_rand(N, C, H, W, -1, 1);
    tb filt = tb_from(1, 1, L, L, f);
    const int Ho = up ? 2 * H : (H + 2 * pad - L) / 2 + 1,
              Wo = up ? 2 * W : (W + 2 * pad - L) / 2 + 1;
    tb out = tb_new(N, C, Ho, Wo);
    float *ref = malloc((size_t)out.numel * sizeof(float));
    if (up)
        ref_fir_up(ref, in.h, f, L, pad, N, C, H, W);
    else
        ref_fir_down(ref, in.h, f, L, pad, N, C, H, W, Ho, Wo);
    tb_poison(&out);
    if (up)
        edm_op_fir_up(B, &out.t, &in.t, &filt.t, pad);
    else
        edm_op_fir_down(B, &out.t, &in.t, &filt.t, pad);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] L%d pad %d -> %dx%d", N, C, H, W, L, pad, Ho, Wo);
    expect(up ? "fir_up" : "fir_down", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&filt), tb_free(&out);
}

static void test_fir(void) {
    for (int up = 0; up <= 1; up++) {
        case_fir(up, 1, 3, 8, 8, f_11, 2, 0);
        case_fir(up, 3, 5, 6, 10, f_11, 2, 0);
        case_fir(up, 3, 5, 6, 10, f_1331, 4, 1);
        case_fir(up, 1, 7, 7, 9, f_1331, 4, 1); /* odd sizes */
        case_fir(up, 2, 3, 9, 5, f_odd, 3, 1);  /* non-symmetric filter */
        case_fir(up, 2, 3, 9, 5, f_odd, 3, 0);
        case_fir(up, 2, 3, 5, 6, f_1331, 4, 3);     /* padding wider than the filter reach */
        case_fir(up, 1, 2, 1, 1, f_1331, 4, 1);     /* 1x1 plane */
        case_fir(up, 16, 37, 16, 16, f_1331, 4, 1); /* enough planes for the whole team */
    }
    case_fir(0, 2, 3, 10, 12, f_1331, 4, 0); /* fused aux_residual: padded conv, then FIR pad 0 */
}

static void case_linear(int N, int K, int O, int has_bias, float alpha, float beta, int act) {
    tb in = tb_rand(N, K, 1, 1, -1, 1);
    tb w = tb_rand(O, K, 1, 1, -0.3, 0.3);
    tb b = tb_rand(1, O, 1, 1, -1, 1);
    tb out = tb_rand(N, O, 1, 1, -1, 1); /* the accumulator when beta = 1 */
    float *ref = copy_of(&out);
    ref_linear(ref, in.h, w.h, has_bias ? b.h : NULL, alpha, beta, act, N, K, O);
    if (beta == 0.0f) tb_poison(&out); /* beta 0 must not read out (NaN * 0 = NaN) */
    edm_op_linear(B, &out.t, &in.t, &w.t, has_bias ? &b.t : NULL, alpha, beta, act);
    char what[128];
    snprintf(what, sizeof what, "N%d K%d O%d%s a%.3g b%.0f%s", N, K, O, has_bias ? " bias" : "",
             (double)alpha, (double)beta, act ? " silu" : "");
    expect("linear", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&w), tb_free(&b), tb_free(&out);
}

static void test_linear(void) {
    case_linear(1, 7, 5, 1, 1.0f, 0.0f, 0);
    case_linear(3, 37, 70, 1, 1.0f, 0.0f, 1);
    case_linear(3, 37, 70, 0, 2.5f, 1.0f, 0);
    case_linear(3, 37, 70, 1, 0.5f, 1.0f, 1);
    case_linear(16, 1024, 1030, 1, 1.0f, 0.0f, 1); /* split by columns */
    case_linear(6000, 256, 8, 1, 1.0f, 1.0f, 0);    /* split by rows */
}

static void case_gn(int N, int C, int H, int W, int G, float eps, int pre, int ss, int act,
                    int alias, double offset) {
    tb in = tb_rand(N, C, H, W, offset - 1, offset + 1);
    tb gamma = tb_rand(1, C, 1, 1, 0.5, 1.5);
    tb beta = tb_rand(1, C, 1, 1, -0.5, 0.5);
    tb pa = tb_rand(N, C, 1, 1, -1, 1);
    tb sh = tb_rand(N, 2 * C, 1, 1, -1, 1);
    tb sep = tb_new(N, C, H, W);
    tb *out = alias ? &in : &sep;
    float *ref = malloc((size_t)in.numel * sizeof(float));
    ref_group_norm(ref, in.h, gamma.h, beta.h, G, eps, pre ? pa.h : NULL, ss ? sh.h : NULL, act, N,
                   C, H * W);
    if (!alias) tb_poison(&sep);
    edm_op_group_norm(B, &out->t, &in.t, &gamma.t, &beta.t, G, eps, pre ? &pa.t : NULL,
                      ss ? &sh.t : NULL, act);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] G%d eps%.0e%s%s%s%s%s", N, C, H, W, G, (double)eps,
             pre ? " pre_add" : "", ss ? " scale_shift" : "", act ? " silu" : "",
             alias ? " out=in" : "", offset != 0 ? " offset" : "");
    expect("group_norm", what, out, ref);
    free(ref);
    tb_free(&in), tb_free(&gamma), tb_free(&beta), tb_free(&pa), tb_free(&sh), tb_free(&sep);
}

static void test_group_norm(void) {
    case_gn(1, 8, 5, 3, 2, 1e-6f, 0, 0, 0, 0, 0);
    case_gn(3, 12, 4, 7, 3, 1e-5f, 1, 0, 1, 0, 0);
    case_gn(3, 12, 4, 7, 3, 1e-5f, 0, 1, 1, 0, 0);
    case_gn(3, 12, 4, 7, 3, 1e-6f, 0, 0, 1, 1, 0);
    case_gn(3, 12, 4, 7, 3, 1e-6f, 1, 1, 0, 1, 0);
    case_gn(2, 20, 9, 6, 5, 1e-6f, 0, 0, 0, 0, 30.0); /* large mean: centred variance */
    case_gn(4, 96, 16, 16, 24, 1e-6f, 1, 0, 1, 0, 0); /* enough work for the whole team */
    case_gn(1, 6, 1, 1, 3, 1e-5f, 0, 0, 0, 0, 0);     /* 1x1 maps, 2 values per group */
}

static void case_bias_residual(int N, int C, int H, int W, int has_bias, int res_mode,
                               float scale) {
    /* res_mode: 0 none, 1 separate; out: 0 separate, 1 = in, 2 = residual */
    tb in = tb_rand(N, C, H, W, -1, 1), b = tb_rand(1, C, 1, 1, -1, 1),
       r = tb_rand(N, C, H, W, -1, 1);
    tb sep = tb_new(N, C, H, W);
    for (int alias = 0; alias <= (res_mode ? 2 : 1); alias++) {
        edm_op_upload(B, &in.t, in.h);
        edm_op_upload(B, &r.t, r.h);
        tb *out = alias == 1 ? &in : alias == 2 ? &r : &sep;
        float *ref = malloc((size_t)in.numel * sizeof(float));
        ref_bias_residual(ref, in.h, has_bias ? b.h : NULL, res_mode ? r.h : NULL, scale, N, C,
                          H * W);
        float *keep_in = copy_of(&in), *keep_r = copy_of(&r);
        if (!alias) tb_poison(&sep);
        edm_op_bias_residual(B, &out->t, &in.t, has_bias ? &b.t : NULL, res_mode ? &r.t : NULL,
                             scale);
        char what[128];
        snprintf(what, sizeof what, "[%d,%d,%d,%d]%s%s s%.3g%s", N, C, H, W,
                 has_bias ? " bias" : "", res_mode ? " res" : "", (double)scale,
                 alias == 1   ? " out=in"
                 : alias == 2 ? " out=res"
                              : "");
        expect("bias_residual", what, out, ref);
        memcpy(in.h, keep_in, (size_t)in.numel * sizeof(float));
        memcpy(r.h, keep_r, (size_t)r.numel * sizeof(float));
        free(ref), free(keep_in), free(keep_r);
    }
    tb_free(&in), tb_free(&b), tb_free(&r), tb_free(&sep);
}

static void test_small_ops(void) {
    case_bias_residual(3, 5, 4, 7, 1, 0, 1.0f);
    case_bias_residual(3, 5, 4, 7, 0, 1, 0.70710678f);
    case_bias_residual(1, 7, 3, 2, 1, 1, 0.5f);
    case_bias_residual(16, 64, 32, 32, 1, 1, 0.70710678f); /* whole team */

    { /* concat */
        tb a = tb_rand(3, 2, 3, 4, -1, 1), b = tb_rand(3, 5, 3, 4, -1, 1), out = tb_new(3, 7, 3, 4);
        float *ref = malloc((size_t)out.numel * sizeof(float));
        ref_concat(ref, a.h, b.h, 3, 2, 5, 12);
        tb_poison(&out);
        edm_op_concat(B, &out.t, &a.t, &b.t);
        expect("concat", "[3,2|5,3,4]", &out, ref);
        free(ref), tb_free(&a), tb_free(&b), tb_free(&out);
    }
    for (int swap = 0; swap <= 1; swap++) { /* embed: arguments of hundreds of radians */
        tb x = tb_rand(3, 1, 1, 1, -3, 3), f = tb_rand(1, 9, 1, 1, -1, 1),
           out = tb_new(3, 18, 1, 1);
        for (int i = 0; i < 9; i++) f.h[i] *= 2.0f * 3.14159265f * 16.0f;
        x.h[2] = 0.0f; /* cos 0 = 1, sin 0 = 0 */
        edm_op_upload(B, &f.t, f.h);
        edm_op_upload(B, &x.t, x.h);
        float *ref = malloc((size_t)out.numel * sizeof(float));
        ref_embed(ref, x.h, f.h, 3, 9, swap);
        tb_poison(&out);
        edm_op_embed(B, &out.t, &x.t, &f.t, swap);
        expect("embed", swap ? "N3 half9 [sin|cos]" : "N3 half9 [cos|sin]", &out, ref);
        free(ref), tb_free(&x), tb_free(&f), tb_free(&out);
    }
    for (int alias = 0; alias <= 1; alias++) { /* scale_rows */
        tb in = tb_rand(3, 5, 4, 3, -1, 1), k = tb_rand(3, 1, 1, 1, -2, 2),
           sep = tb_new(3, 5, 4, 3);
        float *ref = malloc((size_t)in.numel * sizeof(float));
        ref_scale_rows(ref, in.h, k.h, 3, 60);
        tb *out = alias ? &in : &sep;
        if (!alias) tb_poison(&sep);
        edm_op_scale_rows(B, &out->t, &in.t, &k.t);
        expect("scale_rows", alias ? "[3,5,4,3] out=in" : "[3,5,4,3]", out, ref);
        free(ref), tb_free(&in), tb_free(&k), tb_free(&sep);
    }
    for (int cf = 1; cf <= 2; cf++) { /* precond_out, iDDPM's F has 2C channels */
        tb x = tb_rand(3, 3, 5, 4, -1, 1), F = tb_rand(3, 3 * cf, 5, 4, -1, 1);
        tb cs = tb_rand(3, 1, 1, 1, 0, 1), co = tb_rand(3, 1, 1, 1, -80, 80),
           out = tb_new(3, 3, 5, 4);
        float *ref = malloc((size_t)out.numel * sizeof(float));
        ref_precond_out(ref, x.h, F.h, cs.h, co.h, 3, 3, 3 * cf, 20);
        tb_poison(&out);
        edm_op_precond_out(B, &out.t, &x.t, &F.t, &cs.t, &co.t);
        expect("precond_out", cf == 2 ? "[3,3,5,4] F 2C" : "[3,3,5,4]", &out, ref);
        free(ref), tb_free(&x), tb_free(&F), tb_free(&cs), tb_free(&co), tb_free(&out);
    }
    { /* upload/download round trip, odd element count */
        tb x = tb_rand(1, 3, 7, 5, -1, 1);
        float *ref = copy_of(&x);
        expect("upload", "[1,3,7,5] round trip", &x, ref);
        free(ref), tb_free(&x);
    }
}

static void case_attention(int N, int C, int H, int W, int heads) {
    tb qkv = tb_rand(N, 3 * C, H, W, -1.5, 1.5), out = tb_new(N, C, H, W);
    float *ref = malloc((size_t)out.numel * sizeof(float));
    ref_attention(ref, qkv.h, N, C, H * W, heads);
    tb_poison(&out);
    edm_op_attention(B, &out.t, &qkv.t, heads);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] heads %d", N, C, H, W, heads);
    expect("attention", what, &out, ref);
    free(ref), tb_free(&qkv), tb_free(&out);
}

static void test_attention(void) {
    case_attention(1, 4, 3, 5, 1);
    case_attention(3, 10, 4, 4, 2);
    case_attention(3, 6, 2, 3, 1);
    case_attention(2, 64, 8, 8, 2);
    case_attention(1, 32, 20, 20, 1); /* one batch-head: query rows split across the team */
}

/* ---- the front-end's sticky failure -------------------------------------------------------- */

static void test_sticky(void) {
    tb in = tb_rand(2, 3, 4, 4, -1, 1), w = tb_rand(5, 3, 3, 3, -1, 1);
    tb bad = tb_new(2, 5, 3, 4); /* Ho should be 4 */
    tb x = tb_rand(2, 3, 2, 2, -1, 1), k = tb_rand(2, 1, 1, 1, -1, 1), y = tb_new(2, 3, 2, 2);
    edm_backend_clear(B);
    tb_poison(&y);
    double flops = B->flops;
    int64_t ran = B->ops_run;
    edm_op_conv2d(B, &bad.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    CHECK(B->failed, "%s: a conv2d shape mismatch was not rejected", B_label);
    CHECK(strstr(B->message, "conv2d") && strstr(B->message, "shape"), "%s: message '%s'", B_label,
          B->message);
    char first[sizeof B->message];
    snprintf(first, sizeof first, "%s", B->message);
    edm_op_scale_rows(B, &y.t, &x.t, &k.t);                  /* valid, but must not run */
    edm_op_linear(B, &y.t, &x.t, &w.t, NULL, 1.0f, 0.0f, 0); /* invalid: must not replace msg */
    CHECK(B->ops_run == ran, "%s: ops ran after a failure", B_label);
    CHECK(B->flops == flops, "%s: flops counted after a failure", B_label);
    CHECK(strcmp(first, B->message) == 0, "%s: sticky message changed to '%s'", B_label,
          B->message);
    edm_backend_clear(B);
    tb_fetch(&y);
    int untouched = 1;
    for (int i = 0; i < y.numel; i++) untouched &= isnan(y.h[i]) != 0;
    CHECK(untouched, "%s: an op after the failure wrote its output", B_label);
    /* after clearing, the same op runs */
    float ref[24];
    ref_scale_rows(ref, x.h, k.h, 2, 12);
    edm_op_scale_rows(B, &y.t, &x.t, &k.t);
    expect("scale_rows", "after edm_backend_clear", &y, ref);
    tb_free(&in), tb_free(&w), tb_free(&bad), tb_free(&x), tb_free(&k), tb_free(&y);
}

static void run_suite(edm_backend *b, const char *label) {
    B = b;
    B_label = label;
    printf("== %s: %s\n", label, edm_backend_describe(b));
    test_conv2d();
    test_fir();
    test_linear();
    test_group_norm();
    test_small_ops();
    test_attention();
    test_sticky();
}

/* ---- CPU-specific checks --------------------------------------------------------------------- */

static void test_cpu_constructor(void) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = "cpu";
    edm_error err;
    edm_backend *b = NULL;
    for (int p = EDM_PRECISION_TF32; p <= EDM_PRECISION_BF16; p++) {
        o.precision = (enum edm_precision)p;
        enum edm_status st = edm_backend_new(&o, &b, &err);
        CHECK(st == EDM_EUNSUPPORTED && b == NULL && strstr(err.message, "fp32"),
              "cpu backend with precision %s: status %d '%s'", edm_precision_name(o.precision),
              (int)st, err.message);
    }
    o.precision = EDM_PRECISION_FP32;
    o.threads = -1;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_EINVAL && b == NULL, "threads -1 accepted");
    o.threads = 2;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_OK && b, "cpu backend: %s", err.message);
    if (b) {
        const char *d = edm_backend_describe(b);
        CHECK(strncmp(d, "cpu (OpenBLAS", 13) == 0 && strstr(d, "2 threads, fp32)"),
              "description '%s'", d);
        CHECK(strcmp(edm_backend_name(b), "cpu") == 0 && b->act_dtype == EDM_F32, "name/dtype");
        edm_backend_free(b);
    }
}

/* The CPU exp (softmax, silu) against exp() in double, in ulps of the fp32 result; and the
 * run-time-selected silu (8 AVX2 lanes where present) bit-identical to the 4-lane one. */
static void test_cpu_vec(void) {
    double worst = 0;
    float at = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = -87.0f + 175.5f * (float)i / 2000000.0f;
        double want = exp((double)x);
        float got = edm_cpu_expf(x);
        double ulp = nextafterf((float)want, INFINITY) - (float)want;
        double e = fabs(got - want) / ulp;
        if (e > worst) worst = e, at = x;
    }
    printf("cpu exp: max error %.2f ulp (at %.6g)\n", worst, (double)at);
    CHECK(worst <= 2.0, "cpu exp error %.2f ulp at %g", worst, (double)at);
    CHECK(edm_cpu_expf(-200.0f) == 0.0f && isinf(edm_cpu_expf(200.0f)) &&
              edm_cpu_expf(0.0f) == 1.0f,
          "cpu exp limits");

    enum { N = 1003 }; /* not a multiple of 4 or 8: the tails too */
    static float a[N], b[N];
    for (int i = 0; i < N; i++) a[i] = b[i] = (float)(40.0 * urand() - 20.0);
    edm_cpu_silu_inplace(a, N);
    edm_cpu_silu_inplace_generic(b, N);
    int same = memcmp(a, b, sizeof a) == 0;
    printf("cpu silu: %s path %s the 4-lane path\n", edm_cpu_has_wide_vectors() ? "avx2" : "4-lane",
           same ? "bit-identical to" : "DIFFERS from");
    CHECK(same, "dispatched silu differs from the 4-lane silu");
}

/* Steady state allocates nothing: a repeated conv reuses the per-thread scratch. */
static void test_cpu_scratch_steady(void) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = "cpu";
    o.threads = 2;
    edm_error err;
    edm_backend *b = NULL;
    if (edm_backend_new(&o, &b, &err) != EDM_OK) {
        CHECK(0, "cpu backend: %s", err.message);
        return;
    }
    B = b;
    B_label = "cpu2";
    tb in = tb_rand(4, 16, 12, 12, -1, 1), w = tb_rand(8, 16, 3, 3, -1, 1),
       out = tb_new(4, 8, 12, 12);
    struct cpu_ctx *cx = b->ctx;
    edm_op_conv2d(b, &out.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    float *first[2] = {cx->scratch[0], cx->scratch[1]};
    for (int i = 0; i < 3; i++) edm_op_conv2d(b, &out.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    CHECK(!b->failed && first[0] && cx->scratch[0] == first[0] && cx->scratch[1] == first[1],
          "scratch reallocated in steady state");
    tb_free(&in), tb_free(&w), tb_free(&out);
    edm_backend_free(b);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the table and FAIL lines (stderr) in order */
    init_filters();
    test_cpu_constructor();
    test_cpu_vec();
    test_cpu_scratch_steady();

    const int threads[] = {1, 3, 0};
    for (int i = 0; i < 3; i++) {
        edm_backend_options o;
        edm_backend_options_default(&o);
        o.name = "cpu";
        o.threads = threads[i];
        edm_error err;
        edm_backend *b = NULL;
        if (edm_backend_new(&o, &b, &err) != EDM_OK) {
            CHECK(0, "cpu backend (threads %d): %s", threads[i], err.message);
            continue;
        }
        char label[16];
        snprintf(label, sizeof label, "cpu%d", threads[i]);
        run_suite(b, label);
        edm_backend_free(b);
    }

    edm_backend_info cuda_info;
    if (edm_backend_lookup("cuda", &cuda_info, NULL) == EDM_OK && cuda_info.devices > 0) {
        edm_backend_options o;
        edm_backend_options_default(&o);
        o.name = "cuda";
        o.precision = EDM_PRECISION_FP32;
        edm_error err;
        edm_backend *b = NULL;
        if (edm_backend_new(&o, &b, &err) == EDM_OK) {
            run_suite(b, "cuda");
            edm_backend_free(b);
        } else {
            CHECK(0, "cuda backend: %s", err.message);
        }
    } else {
        SKIP("no usable CUDA device: ops tested on the cpu backend only");
    }
    return check_finish();
}
