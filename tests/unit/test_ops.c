/*
 * test_ops.c - the op tests of every backend in one program (ggml's test-backend-ops is the
 * model): each op of core/ops.h, through the front-end (edm_op_*), against the plain
 * double-accumulating references of op_reference.c, on every backend of the registry that
 * has a usable device, in every precision that backend accepts.
 *
 *   1. Tolerances: one table, a row per precision and a column per kind of op.
 *   2. Test tensors: backend memory plus the host values the reference sees. An operand lives
 *      in fp32 or in the backend's activation type, as ops.h's dtype rules say. After the
 *      upload the host copy is read back, so the reference computes from exactly the values
 *      the backend holds and the error measured is the op's own (the storage rounding is
 *      measured once, by the upload case). Every output is poisoned with NaN before the op,
 *      so an element the backend forgets to write fails the comparison.
 *   3. The op cases, as tables: random data, odd shapes (batch 1, channel counts that are
 *      not multiples of 4 or 32, H != W, 1x1 maps), both FIR filters and a non-symmetric
 *      one, every optional operand, every alias ops.h allows, and sizes that make a backend
 *      split its work (thread teams, chunked scratch).
 *   4. Per backend x precision: the backend's contract (name, precision, activation type,
 *      device ordinals, memory info), every op case, the front-end's sticky failure, five
 *      forward passes through the forward hooks (CUDA graphs), and small networks through
 *      the denoiser against the cpu backend (the reference for whole networks: tests/vectors
 *      checks it against the official code). A backend added to the registry gets all of
 *      this with no edit here.
 *   5. Extras of one backend, apart: cpu (constructor, vector kernels, scratch reuse, the op
 *      cases again with 1 and 3 threads for odd team splits, the conv fallback), cuda (allocation failure and
 *      the out-of-memory message, convolutions through cuDNN, CUDA graph counters).
 *
 * Registry entries without a device and precisions a backend refuses (EDM_EUNSUPPORTED) are
 * reported as SKIP lines with the reason. `make sim` builds this program against a host
 * emulator of CUDA (tests/gpu/sim/), which runs the CUDA paths on a machine without a GPU.
 *
 * Usage: test_ops [--backend NAME] [--precision fp32|tf32|fp16|bf16] [--only PART[,PART...]]
 *   PART: an op (conv2d, fir_down, fir_up, linear, group_norm, bias_residual, concat,
 *   attention, embed, scale_rows, precond_out, upload), ops (all of them), contract, sticky,
 *   forward, networks, cpu_basics, cuda_memory, graphs.
 *
 * Every case runs in the backend's declared activation layout (ops.h "Layouts"): the host
 * values are NCHW and cross through edm_op_upload_act/edm_op_download_act, so the NCHW
 * references judge an NHWC backend's ops too; case_layout checks the declaration itself.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cpu/cpu_internal.h" /* the CPU exp and silu kernels and scratch, checked directly */
#include "edm.h"
#include "op_reference.h"
#include "ops.h"

/* ---- 1. tolerances ------------------------------------------------------------------------ */

/*
 * max|got - ref| / max|ref| over an output. Kinds of op:
 *   exact   data movement (concat): no arithmetic;
 *   store   an upload read back: the storage type's rounding (unit roundoff, 0 for fp32);
 *   map     a few terms per output (FIR, bias/residual, scaling, embeddings, preconditioning);
 *   reduce  long sums (conv2d, linear, group norm statistics, attention);
 *   network several ops in a row (forward passes, whole networks): errors compound.
 * fp32 rows: IEEE fp32, only the summation order differs from the double reference. tf32:
 * the GEMMs over activations (conv, attention) multiply with 10-bit mantissas; the rest is
 * fp32. fp16/bf16: activations and conv weights stored in the narrow type, fp32 accumulation.
 * Ops that are fp32 in every precision (ops.h: linear, embed) take the fp32 row.
 */
enum op_kind { K_EXACT, K_STORE, K_MAP, K_REDUCE, K_NETWORK, N_KINDS };

static const double tolerances[4][N_KINDS] = {
    /*                       exact  store    map   reduce network */
    [EDM_PRECISION_FP32] = {0.0, 0.0, 1e-6, 1e-5, 2e-5},
    [EDM_PRECISION_TF32] = {0.0, 0.0, 1e-6, 3e-3, 1e-2},
    [EDM_PRECISION_FP16] = {0.0, 0x1p-11, 5e-3, 5e-3, 1e-2},
    [EDM_PRECISION_BF16] = {0.0, 0x1p-8, 3e-2, 3e-2, 5e-2},
};

static const struct op_info {
    const char *name;
    enum op_kind kind;
    int fp32; /* fp32 in every precision */
} op_infos[] = {
    {"conv2d", K_REDUCE, 0},    {"fir_down", K_MAP, 0},      {"fir_up", K_MAP, 0},
    {"linear", K_REDUCE, 1},    {"group_norm", K_REDUCE, 0}, {"bias_residual", K_MAP, 0},
    {"concat", K_EXACT, 0},     {"attention", K_REDUCE, 0},  {"embed", K_MAP, 1},
    {"scale_rows", K_MAP, 0},   {"precond_out", K_MAP, 0},   {"upload", K_STORE, 0},
    {"upload_f32", K_STORE, 1}, {"forward", K_NETWORK, 0},   {"networks", K_NETWORK, 0},
};

/* ---- selection (--backend, --precision, --only) ------------------------------------------- */

static const char *only_backend;
static int only_precision = -1;
static const char *only_parts; /* comma-separated, NULL: everything */

static int want(const char *part) {
    if (!only_parts) return 1;
    size_t n = strlen(part);
    for (const char *s = only_parts; (s = strstr(s, part)) != NULL; s += n)
        if ((s == only_parts || s[-1] == ',') && (s[n] == ',' || s[n] == '\0')) return 1;
    return 0;
}

static int want_op(const char *op) {
    return want(op) || want("ops");
}

/* ---- 2. the backend under test and its tensors -------------------------------------------- */

static edm_backend *B;       /* the backend under test */
static char B_label[48];     /* "cuda/fp16", "cpu/fp32/t3" */
static edm_backend *net_ref; /* the cpu backend (fp32): the reference for whole networks */

static double tolerance(const char *op) {
    for (size_t i = 0; i < sizeof op_infos / sizeof op_infos[0]; i++)
        if (strcmp(op_infos[i].name, op) == 0)
            return tolerances[op_infos[i].fp32 ? EDM_PRECISION_FP32 : B->precision]
                             [op_infos[i].kind];
    fprintf(stderr, "test_ops: no tolerance for '%s'\n", op);
    abort();
}

static uint64_t rng_state;
static double urand(void) { /* xorshift64*, uniform in [0, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0;
}

/* Where an operand lives (ops.h, "Dtypes" and "Layouts"): F32 fp32 and raw (parameters,
 * per-sample vectors), ACT an activation (the activation type and layout), WGT conv weights
 * (the activation type, the model file's layout), X32 an fp32 activation (the denoiser's x
 * and D: fp32, the activation layout). Host values are always NCHW. */
enum { F32, ACT, WGT, X32 };

typedef struct tb {
    edm_tensor t;
    float *h; /* host values: what the backend holds after the upload, or what was downloaded */
    int64_t numel;
    int act; /* crosses through upload_act/download_act */
} tb;

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "test_ops: out of host memory\n");
        exit(2);
    }
    return p;
}

static tb tb_new(int where, int n, int c, int h, int w) {
    tb x;
    memset(&x, 0, sizeof x);
    x.t.n = n, x.t.c = c, x.t.h = h, x.t.w = w;
    x.t.dtype = where == ACT || where == WGT ? B->act_dtype : EDM_F32;
    x.act = where == ACT || where == X32;
    x.numel = (int64_t)n * c * h * w;
    x.t.data = B->ops->alloc(B->ctx, (size_t)x.numel * edm_dtype_size(x.t.dtype));
    x.h = calloc((size_t)x.numel, sizeof(float));
    if (!x.t.data || !x.h) {
        fprintf(stderr, "test_ops: %s: out of memory for [%d,%d,%d,%d]\n", B_label, n, c, h, w);
        exit(2);
    }
    return x;
}

/* Host NCHW values to the backend, through the activation conversion where x is one. */
static void tb_put(tb *x, const float *v) {
    if (x->act)
        edm_op_upload_act(B, &x->t, v);
    else
        edm_op_upload(B, &x->t, v);
}

static void tb_fetch(tb *x) {
    if (x->act)
        edm_op_download_act(B, x->h, &x->t);
    else
        edm_op_download(B, x->h, &x->t);
    B->ops->sync(B->ctx, (char[EDM_OPS_MSG]){0});
}

/* Uploads x->h and reads back what the backend stores (the narrow types round). */
static void tb_store(tb *x) {
    tb_put(x, x->h);
    if (x->t.dtype != EDM_F32) tb_fetch(x);
}

/* Uniform values in [lo, hi). */
static tb tb_rand(int where, int n, int c, int h, int w, double lo, double hi) {
    tb x = tb_new(where, n, c, h, w);
    for (int64_t i = 0; i < x.numel; i++) x.h[i] = (float)(lo + (hi - lo) * urand());
    tb_store(&x);
    return x;
}

static tb tb_from(int where, int n, int c, int h, int w, const float *v) {
    tb x = tb_new(where, n, c, h, w);
    memcpy(x.h, v, (size_t)x.numel * sizeof(float));
    tb_store(&x);
    return x;
}

/* NaN-fills the backend copy, so unwritten output elements show up. */
static void tb_poison(tb *x) {
    float *nan = xmalloc((size_t)x->numel * sizeof(float));
    for (int64_t i = 0; i < x->numel; i++) nan[i] = NAN;
    edm_op_upload(B, &x->t, nan);
    free(nan);
}

static void tb_free(tb *x) {
    B->ops->free(B->ctx, x->t.data);
    free(x->h);
    memset(x, 0, sizeof *x);
}

static float *copy_of(const tb *x) {
    float *c = xmalloc((size_t)x->numel * sizeof(float));
    memcpy(c, x->h, (size_t)x->numel * sizeof(float));
    return c;
}

static float *ref_new(const tb *like) {
    return xmalloc((size_t)like->numel * sizeof(float));
}

/* Compares got[] with ref[], prints one line, counts one check. */
static void compare(const char *op, const char *what, const float *got, const float *ref,
                    int64_t n) {
    double max_abs = 0, max_ref = 0, err2 = 0, ref2 = 0;
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        if (!(d == d) || isinf(got[i]))
            bad++;
        else if (d > max_abs)
            max_abs = d;
        err2 += d == d ? d * d : 0;
        ref2 += (double)ref[i] * ref[i];
        if (fabs((double)ref[i]) > max_ref) max_ref = fabs((double)ref[i]);
    }
    const double rel = max_abs / (max_ref > 1e-30 ? max_ref : 1e-30);
    const double nmse = err2 / (ref2 > 1e-30 ? ref2 : 1e-30);
    const double tol = tolerance(op);
    const int ok = !B->failed && bad == 0 && rel <= tol;
    printf("%-16s %-13s %-44s max_abs %.2e max_rel %.2e nmse %.1e (tol %.1e)%s\n", B_label, op,
           what, max_abs, rel, nmse, tol, ok ? "" : "  <-- FAIL");
    CHECK(ok, "%s %s %s: %lld non-finite, max_rel %.3e > %.1e%s%s", B_label, op, what,
          (long long)bad, rel, tol, B->failed ? "; backend failed: " : "",
          B->failed ? B->message : "");
    if (B->failed) edm_backend_clear(B);
}

/* Downloads `got` and compares it with ref[]. */
static void expect(const char *op, const char *what, tb *got, const float *ref) {
    tb_fetch(got);
    compare(op, what, got->h, ref, got->numel);
}

/* ---- 3. the op cases ------------------------------------------------------------------------ */

static const struct conv_case {
    int n, ci, h, w, co, k, pad, bias;
    int res; /* 0 none, 1 a separate tensor, 2 out itself (out holds the residual) */
    float scale;
} conv_cases[] = {
    {1, 3, 5, 7, 5, 3, 1, 1, 0, 1.0f},
    {3, 6, 9, 4, 7, 3, 1, 1, 1, 0.70710678f},
    {7, 5, 6, 5, 6, 3, 1, 1, 1, 0.5f},          /* an odd batch of 7, residual apart from out */
    {3, 6, 9, 4, 7, 3, 1, 1, 2, 0.70710678f},   /* residual aliases out, small map */
    {3, 13, 6, 5, 9, 1, 0, 1, 1, 1.0f},         /* 1x1 */
    {2, 10, 17, 19, 6, 1, 0, 0, 0, 1.0f},       /* 1x1, P >= 256: no im2col */
    {2, 10, 17, 19, 6, 1, 0, 1, 2, 0.5f},       /* ... with residual = out */
    {3, 5, 20, 18, 6, 3, 1, 1, 1, 1.0f},        /* P = 360: one chunk per image */
    {1, 4, 24, 27, 6, 3, 1, 0, 0, 1.0f},        /* P = 648 > chunk: split image */
    {2, 4, 24, 27, 3, 3, 1, 1, 2, 0.3f},        /* ... residual = out */
    {3, 5, 7, 6, 4, 5, 2, 1, 0, 1.0f},          /* general k */
    {3, 5, 7, 6, 4, 2, 0, 1, 0, 1.0f},          /* even k, no pad */
    {1, 2, 6, 6, 4, 4, 1, 1, 0, 1.0f},          /* even k with pad (fused resample) */
    {2, 3, 8, 9, 4, 3, 0, 0, 1, 1.0f},          /* valid conv: Ho = H - 2 */
    {2, 4, 6, 5, 3, 3, 0, 1, 0, 1.0f},          /* ... with bias */
    {2, 3, 8, 9, 4, 3, 2, 1, 0, 1.0f},          /* pad 2 (the fused aux_residual down) */
    {1, 3, 5, 4, 5, 3, 2, 0, 2, 1.0f},          /* ... residual = out */
    {2, 3, 4, 5, 4, 1, 1, 1, 0, 2.0f},          /* 1x1 with padding */
    {2, 3, 4, 4, 2, 1, 1, 1, 1, 0.5f},          /* ... residual, Co = 2 */
    {2, 5, 7, 9, 6, 3, 1, 1, 1, 0.70710678f},   /* the common 3x3 residual form */
    {3, 3, 5, 5, 7, 1, 0, 0, 0, 1.0f},          /* 1x1, no operands */
    {1, 6, 4, 6, 5, 1, 0, 1, 2, 0.70710678f},   /* 1x1, batch 1, residual = out */
    {5, 33, 4, 4, 17, 3, 1, 1, 1, 0.70710678f}, /* 4x4 level, images span chunks */
    {2, 2, 40, 30, 5, 3, 1, 1, 1, 1.0f},        /* P = 1200: chunks split images */
    {3, 2, 40, 30, 5, 3, 1, 1, 2, 0.5f},        /* ... residual = out */
    {2, 460, 24, 24, 4, 3, 1, 1, 0, 1.0f},      /* deep K: narrower chunks */
    {3, 7, 16, 16, 5, 1, 0, 1, 1, 1.0f},        /* 1x1 at 16x16: in place, per image */
    {5, 7, 8, 8, 5, 1, 0, 1, 2, 1.0f},          /* 1x1 at 8x8: spans images, res = out */
    /* 8 images of 4.7 MB of fp32 columns each: a 16 MiB scratch budget (set in main) splits
     * the batch into chunks (3 + 3 + 2); wide enough (K = 1152) to see accumulation error. */
    {8, 128, 32, 32, 9, 3, 1, 1, 1, 1.0f},
    /* channels-last odd shapes: C not a multiple of 8/16, H != W, batch > 1, both aliases */
    {3, 13, 5, 7, 17, 3, 1, 1, 2, 0.70710678f},
    {3, 19, 7, 5, 13, 3, 1, 1, 1, 0.5f},
    {2, 21, 9, 6, 3, 1, 0, 1, 2, 0.70710678f},
    {4, 9, 3, 11, 31, 1, 0, 0, 1, 2.0f},
    /* 3x3 pad 1 with 16+ channels: the CPU's Winograd F(2x2,3x3) (cpu_winograd.c) */
    {3, 32, 7, 9, 24, 3, 1, 1, 1, 0.70710678f}, /* odd H and W: partial tiles */
    {2, 64, 8, 8, 48, 3, 1, 1, 2, 0.5f},        /* residual = out */
    {1, 16, 5, 6, 16, 3, 1, 0, 0, 1.0f},        /* its smallest: 16 channels, no operands */
    {1, 17, 1, 1, 19, 3, 1, 1, 0, 1.0f},        /* a 1x1 image: one tile, mostly padding */
    {4, 128, 16, 16, 96, 3, 1, 1, 1, 1.0f},     /* many tiles: chunks, the team split */
};

static void case_conv(const struct conv_case *c) {
    const int Ho = c->h + 2 * c->pad - c->k + 1, Wo = c->w + 2 * c->pad - c->k + 1;
    /* weights scaled like a trained layer's (fan-in), so outputs stay O(1) */
    const double ws = 1.0 / sqrt((double)c->ci * c->k * c->k);
    tb in = tb_rand(ACT, c->n, c->ci, c->h, c->w, -1, 1);
    tb w = tb_rand(WGT, c->co, c->ci, c->k, c->k, -ws, ws);
    tb bias = tb_rand(F32, 1, c->co, 1, 1, -1, 1);
    tb out = tb_new(ACT, c->n, c->co, Ho, Wo);
    tb res = tb_rand(ACT, c->n, c->co, Ho, Wo, -1, 1);
    float *ref = ref_new(&out);
    ref_conv2d(ref, in.h, w.h, c->bias ? bias.h : NULL, c->res ? res.h : NULL, c->scale, c->n,
               c->ci, c->h, c->w, c->co, c->k, c->pad);
    if (c->res == 2)
        tb_put(&out, res.h); /* out holds the residual */
    else
        tb_poison(&out);
    edm_op_conv2d(B, &out.t, &in.t, &w.t, c->bias ? &bias.t : NULL, c->pad,
                  c->res == 1 ? &res.t : c->res == 2 ? &out.t : NULL, c->scale);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] k%d p%d ->%d%s%s s%.3g", c->n, c->ci, c->h, c->w,
             c->k, c->pad, c->co, c->bias ? " bias" : "",
             c->res == 1 ? " res" : c->res == 2 ? " res=out" : "", (double)c->scale);
    expect("conv2d", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&w), tb_free(&bias), tb_free(&out), tb_free(&res);
}

/* Backends cache conv weights rearranged by their address (ops.h "Layouts"): a conv after new
 * weights were uploaded to the same tensor must use the new ones, and a tensor allocated
 * after another was freed must not meet the old one's copy. */
static void case_conv_weights_rewritten(int k, int ch) {
    const int n = 2, ci = ch, h = 6, w = 7, co = ch + 1, pad = k / 2;
    const double ws = 1.0 / sqrt((double)ci * k * k);
    tb in = tb_rand(ACT, n, ci, h, w, -1, 1);
    tb out = tb_new(ACT, n, co, h, w);
    float *ref = ref_new(&out);
    char what[96];
    for (int round = 0; round < 3; round++) {
        tb wt = tb_rand(WGT, co, ci, k, k, -ws, ws);
        for (int again = 0; again < 2; again++) {
            if (again) { /* new values, same address */
                for (int64_t i = 0; i < wt.numel; i++) wt.h[i] = (float)(ws * (2 * urand() - 1));
                tb_store(&wt);
            }
            ref_conv2d(ref, in.h, wt.h, NULL, NULL, 1.0f, n, ci, h, w, co, k, pad);
            tb_poison(&out);
            edm_op_conv2d(B, &out.t, &in.t, &wt.t, NULL, pad, NULL, 1.0f);
            snprintf(what, sizeof what, "k%d %d ch weights %s (round %d)", k, ch,
                     again ? "rewritten in place" : "new tensor", round);
            expect("conv2d", what, &out, ref);
        }
        tb_free(&wt); /* the next round's tensor may get this address */
    }
    free(ref);
    tb_free(&in), tb_free(&out);
}

/* FIR filters: [1,1] and [1,3,3,1] (outer products, normalised) and a non-symmetric 3x3. */
static const float f_11[4] = {0.25f, 0.25f, 0.25f, 0.25f};
static float f_1331[16];
static const float f_odd[9] = {0.1f, -0.2f, 0.3f, 0.05f, 0.5f, -0.15f, 0.2f, 0.0f, 0.4f};

static void init_filters(void) {
    const float r[4] = {1, 3, 3, 1};
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) f_1331[a * 4 + b] = r[a] * r[b] / 64.0f;
}

enum { FIR_11, FIR_1331, FIR_ODD };
static const struct fir_case {
    int down_only, n, c, h, w, filter, pad;
} fir_cases[] = {
    {0, 1, 3, 8, 8, FIR_11, 0},
    {0, 3, 5, 6, 10, FIR_11, 0},
    {0, 2, 3, 8, 6, FIR_11, 0},
    {0, 1, 2, 6, 4, FIR_11, 0},
    {0, 3, 5, 6, 10, FIR_1331, 1},
    {0, 1, 5, 7, 9, FIR_1331, 1},
    {0, 3, 2, 5, 5, FIR_1331, 1},
    {0, 1, 7, 7, 9, FIR_1331, 1},    /* odd sizes */
    {0, 2, 3, 9, 5, FIR_ODD, 1},     /* non-symmetric filter */
    {0, 2, 3, 9, 5, FIR_ODD, 0},
    {0, 2, 3, 5, 6, FIR_1331, 3},    /* padding wider than the filter reach */
    {0, 3, 13, 6, 10, FIR_1331, 1},  /* channels-last: odd C, H != W */
    {0, 2, 17, 10, 4, FIR_11, 0},
    {0, 1, 2, 1, 1, FIR_1331, 1},    /* 1x1 plane */
    {0, 16, 37, 16, 16, FIR_1331, 1}, /* enough planes for a whole thread team */
    {1, 2, 3, 10, 12, FIR_1331, 0},  /* fused aux_residual: padded conv, then FIR pad 0 */
};

static void case_fir(int up, const struct fir_case *c) {
    const float *f = c->filter == FIR_11 ? f_11 : c->filter == FIR_1331 ? f_1331 : f_odd;
    const int L = c->filter == FIR_11 ? 2 : c->filter == FIR_1331 ? 4 : 3;
    const int Ho = up ? 2 * c->h : (c->h + 2 * c->pad - L) / 2 + 1,
              Wo = up ? 2 * c->w : (c->w + 2 * c->pad - L) / 2 + 1;
    tb in = tb_rand(ACT, c->n, c->c, c->h, c->w, -1, 1);
    tb filt = tb_from(F32, 1, 1, L, L, f);
    tb out = tb_new(ACT, c->n, c->c, Ho, Wo);
    float *ref = ref_new(&out);
    if (up)
        ref_fir_up(ref, in.h, f, L, c->pad, c->n, c->c, c->h, c->w);
    else
        ref_fir_down(ref, in.h, f, L, c->pad, c->n, c->c, c->h, c->w, Ho, Wo);
    tb_poison(&out);
    if (up)
        edm_op_fir_up(B, &out.t, &in.t, &filt.t, c->pad);
    else
        edm_op_fir_down(B, &out.t, &in.t, &filt.t, c->pad);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] L%d pad %d -> %dx%d", c->n, c->c, c->h, c->w, L,
             c->pad, Ho, Wo);
    expect(up ? "fir_up" : "fir_down", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&filt), tb_free(&out);
}

static const struct linear_case {
    int n, k, o, bias;
    float alpha, beta;
    int silu;
} linear_cases[] = {
    {1, 7, 5, 1, 1.0f, 0.0f, 0},
    {4, 9, 7, 0, 1.0f, 0.0f, 0},
    {3, 37, 19, 1, 1.0f, 0.0f, 0},
    {1, 16, 64, 1, 1.0f, 0.0f, 1},
    {3, 37, 70, 1, 1.0f, 0.0f, 1},
    {3, 37, 70, 0, 2.5f, 1.0f, 0},
    {5, 10, 33, 0, 3.1622777f, 1.0f, 0}, /* map_label-style: scaled, accumulated */
    {3, 37, 70, 1, 0.5f, 1.0f, 1},
    {2, 64, 256, 1, 1.0f, 1.0f, 1},
    {16, 1024, 1030, 1, 1.0f, 0.0f, 1}, /* split by columns */
    {6000, 256, 8, 1, 1.0f, 1.0f, 0},   /* split by rows */
};

static void case_linear(const struct linear_case *c) {
    const double ws = 1.0 / sqrt((double)c->k);
    tb in = tb_rand(F32, c->n, c->k, 1, 1, -1, 1);
    tb w = tb_rand(F32, c->o, c->k, 1, 1, -ws, ws);
    tb b = tb_rand(F32, 1, c->o, 1, 1, -1, 1);
    tb out = tb_rand(F32, c->n, c->o, 1, 1, -1, 1); /* the accumulator when beta = 1 */
    float *ref = copy_of(&out);
    ref_linear(ref, in.h, w.h, c->bias ? b.h : NULL, c->alpha, c->beta, c->silu, c->n, c->k,
               c->o);
    if (c->beta == 0.0f) tb_poison(&out); /* beta 0 must not read out (NaN * 0 = NaN) */
    edm_op_linear(B, &out.t, &in.t, &w.t, c->bias ? &b.t : NULL, c->alpha, c->beta, c->silu);
    char what[128];
    snprintf(what, sizeof what, "N%d K%d O%d%s a%.3g b%.0f%s", c->n, c->k, c->o,
             c->bias ? " bias" : "", (double)c->alpha, (double)c->beta, c->silu ? " silu" : "");
    expect("linear", what, &out, ref);
    free(ref);
    tb_free(&in), tb_free(&w), tb_free(&b), tb_free(&out);
}

static const struct gn_case {
    int n, c, h, w, groups;
    float eps;
    int pre_add, scale_shift, silu, in_place;
    double offset; /* the inputs' mean: a large one tests the centred variance */
} gn_cases[] = {
    {1, 8, 5, 3, 2, 1e-6f, 0, 0, 0, 0, 0},
    {2, 12, 5, 3, 4, 1e-5f, 0, 0, 0, 0, 0},
    {3, 12, 4, 7, 3, 1e-5f, 1, 0, 1, 0, 0},
    {3, 8, 7, 7, 2, 1e-6f, 1, 0, 1, 0, 0},
    {3, 12, 4, 7, 3, 1e-5f, 0, 1, 1, 0, 0},
    {1, 16, 6, 5, 4, 1e-5f, 0, 1, 1, 0, 0},
    {3, 12, 4, 7, 3, 1e-6f, 0, 0, 1, 1, 0},
    {3, 12, 4, 7, 3, 1e-6f, 1, 1, 0, 1, 0},
    {2, 6, 4, 4, 3, 1e-6f, 1, 1, 1, 1, 0},
    {1, 32, 16, 16, 8, 1e-6f, 0, 0, 1, 1, 0},
    {2, 20, 9, 6, 5, 1e-6f, 0, 0, 0, 0, 30.0},
    {2, 4, 9, 11, 1, 1e-5f, 0, 0, 0, 0, 20.0},
    {4, 96, 16, 16, 24, 1e-6f, 1, 0, 1, 0, 0},   /* enough work for a whole thread team */
    {1, 256, 32, 32, 32, 1e-6f, 1, 0, 1, 0, 0},  /* a CIFAR-10 32x32 block norm */
    {2, 16, 24, 24, 1, 1e-5f, 1, 1, 1, 1, 0},    /* 9216 per group: CUDA's 3-pass kernel */
    {1, 12, 40, 40, 2, 1e-5f, 0, 0, 0, 0, 5.0},  /* 9600 per group, large mean */
    {1, 6, 1, 1, 3, 1e-5f, 0, 0, 0, 0, 0},       /* 1x1 maps, 2 values per group */
    {3, 18, 5, 9, 6, 1e-6f, 1, 0, 1, 1, 0},      /* channels-last: 3 channels per group */
    {2, 21, 13, 7, 7, 1e-5f, 0, 1, 1, 0, 10.0},  /* ... odd C, H != W, large mean */
    {1, 15, 33, 17, 5, 1e-6f, 1, 1, 1, 1, 0},    /* ... batch 1: pixel blocks per item */
};

static void case_gn(const struct gn_case *c) {
    tb in = tb_rand(ACT, c->n, c->c, c->h, c->w, c->offset - 1, c->offset + 1);
    tb gamma = tb_rand(F32, 1, c->c, 1, 1, 0.5, 1.5);
    tb beta = tb_rand(F32, 1, c->c, 1, 1, -0.5, 0.5);
    tb pa = tb_rand(F32, c->n, c->c, 1, 1, -1, 1);
    tb sh = tb_rand(F32, c->n, 2 * c->c, 1, 1, -1, 1);
    tb sep = tb_new(ACT, c->n, c->c, c->h, c->w);
    tb *out = c->in_place ? &in : &sep;
    float *ref = ref_new(&in);
    ref_group_norm(ref, in.h, gamma.h, beta.h, c->groups, c->eps, c->pre_add ? pa.h : NULL,
                   c->scale_shift ? sh.h : NULL, c->silu, c->n, c->c, c->h * c->w);
    if (!c->in_place) tb_poison(&sep);
    edm_op_group_norm(B, &out->t, &in.t, &gamma.t, &beta.t, c->groups, c->eps,
                      c->pre_add ? &pa.t : NULL, c->scale_shift ? &sh.t : NULL, c->silu);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] G%d eps%.0e%s%s%s%s", c->n, c->c, c->h, c->w,
             c->groups, (double)c->eps, c->pre_add ? " pre_add" : "",
             c->scale_shift ? " scale_shift" : "", c->silu ? " silu" : "",
             c->in_place ? " out=in" : "");
    if (c->offset != 0) {
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, " mean %g", c->offset);
    }
    expect("group_norm", what, out, ref);
    free(ref);
    tb_free(&in), tb_free(&gamma), tb_free(&beta), tb_free(&pa), tb_free(&sh), tb_free(&sep);
}

/* bias_residual: each case with out separate, out = in and (with a residual) out = res. */
static const struct br_case {
    int n, c, h, w, bias, res;
    float scale;
} br_cases[] = {
    {3, 5, 4, 7, 1, 0, 1.0f},
    {1, 3, 4, 4, 1, 0, 1.0f},
    {3, 5, 4, 7, 0, 1, 0.70710678f},
    {3, 2, 5, 3, 0, 1, 0.5f},
    {1, 7, 3, 2, 1, 1, 0.5f},
    {2, 5, 3, 7, 1, 1, 0.70710678f},
    {2, 7, 1, 1, 1, 1, 2.0f},
    {16, 64, 32, 32, 1, 1, 0.70710678f}, /* a whole thread team */
};

static void case_bias_residual(const struct br_case *c) {
    tb in = tb_rand(ACT, c->n, c->c, c->h, c->w, -1, 1), b = tb_rand(F32, 1, c->c, 1, 1, -1, 1),
       r = tb_rand(ACT, c->n, c->c, c->h, c->w, -1, 1);
    tb sep = tb_new(ACT, c->n, c->c, c->h, c->w);
    float *ref = ref_new(&in);
    ref_bias_residual(ref, in.h, c->bias ? b.h : NULL, c->res ? r.h : NULL, c->scale, c->n, c->c,
                      c->h * c->w);
    float *keep_in = copy_of(&in), *keep_r = copy_of(&r);
    for (int alias = 0; alias <= (c->res ? 2 : 1); alias++) {
        tb_put(&in, keep_in);
        tb_put(&r, keep_r);
        tb *out = alias == 1 ? &in : alias == 2 ? &r : &sep;
        if (!alias) tb_poison(&sep);
        edm_op_bias_residual(B, &out->t, &in.t, c->bias ? &b.t : NULL, c->res ? &r.t : NULL,
                             c->scale);
        char what[128];
        snprintf(what, sizeof what, "[%d,%d,%d,%d]%s%s s%.3g%s", c->n, c->c, c->h, c->w,
                 c->bias ? " bias" : "", c->res ? " res" : "", (double)c->scale,
                 alias == 1 ? " out=in" : alias == 2 ? " out=res" : "");
        expect("bias_residual", what, out, ref);
    }
    free(ref), free(keep_in), free(keep_r);
    tb_free(&in), tb_free(&b), tb_free(&r), tb_free(&sep);
}

static const struct concat_case {
    int n, ca, cb, h, w;
} concat_cases[] = {{3, 2, 5, 3, 4}, {2, 3, 5, 4, 5}, {1, 1, 7, 3, 3}, {3, 4, 2, 6, 1},
                    {2, 13, 19, 5, 3}};

static void case_concat(const struct concat_case *c) {
    tb a = tb_rand(ACT, c->n, c->ca, c->h, c->w, -1, 1),
       b = tb_rand(ACT, c->n, c->cb, c->h, c->w, -1, 1),
       out = tb_new(ACT, c->n, c->ca + c->cb, c->h, c->w);
    float *ref = ref_new(&out);
    ref_concat(ref, a.h, b.h, c->n, c->ca, c->cb, c->h * c->w);
    tb_poison(&out);
    edm_op_concat(B, &out.t, &a.t, &b.t);
    char what[64];
    snprintf(what, sizeof what, "[%d,%d|%d,%d,%d]", c->n, c->ca, c->cb, c->h, c->w);
    expect("concat", what, &out, ref);
    free(ref), tb_free(&a), tb_free(&b), tb_free(&out);
}

static const struct attention_case {
    int n, c, h, w, heads;
    double amp; /* qkv uniform in (-amp, amp): larger is a more peaked softmax */
} attention_cases[] = {
    {1, 4, 3, 5, 1, 1.5},   {1, 6, 4, 4, 1, 2.0},   {3, 6, 2, 3, 1, 1.5},
    {2, 8, 3, 5, 2, 1.0},   {3, 10, 4, 4, 2, 1.5},  {3, 12, 2, 3, 3, 1.0},
    {2, 32, 8, 8, 1, 3.0},  {2, 64, 8, 8, 2, 1.5},
    {1, 32, 20, 20, 1, 1.5}, /* one batch-head: query rows split across a thread team */
    {1, 64, 16, 16, 1, 1.0}, /* a CIFAR-10 16x16 attention, narrower */
    {2, 15, 3, 7, 3, 1.5},   /* channels-last: 5 channels per head, H != W */
    {3, 9, 5, 2, 1, 2.0},
    /* cpu bf16 runs chunks of 32 MiB of scores: 5 images + 1, then 4 heads + 3 */
    {6, 8, 32, 32, 1, 1.5},
    {1, 56, 32, 32, 7, 1.5},
};

static void case_attention(const struct attention_case *c) {
    tb qkv = tb_rand(ACT, c->n, 3 * c->c, c->h, c->w, -c->amp, c->amp),
       out = tb_new(ACT, c->n, c->c, c->h, c->w);
    float *ref = ref_new(&out);
    ref_attention(ref, qkv.h, c->n, c->c, c->h * c->w, c->heads);
    tb_poison(&out);
    edm_op_attention(B, &out.t, &qkv.t, c->heads);
    char what[128];
    snprintf(what, sizeof what, "[%d,%d,%d,%d] heads %d qkv +-%g", c->n, c->c, c->h, c->w,
             c->heads, c->amp);
    expect("attention", what, &out, ref);
    free(ref), tb_free(&qkv), tb_free(&out);
}

/* embed: Fourier features with random frequencies (arguments of hundreds of radians) and
 * the positional embedding at VP's largest c_noise (999); each as [cos|sin] and [sin|cos]. */
static void case_embed(int n, int half, int positional, int swap) {
    static const float fixed_x[5] = {-0.9f, 0.013f, 1.7f, 2.5f, -3.1f};
    float x[5], f[9];
    for (int i = 0; i < n; i++) x[i] = n == 5 ? fixed_x[i] : (float)(6.0 * urand() - 3.0);
    if (n == 3) x[2] = 0.0f; /* cos 0 = 1, sin 0 = 0 */
    if (positional) x[3] = 998.0f;
    for (int i = 0; i < half; i++)
        f[i] = positional ? powf(1.0f / 10000.0f, (float)i / (float)(half - 1))
                          : (float)(2.0 * 3.14159265 * 16.0 * (2.0 * urand() - 1.0));
    tb xt = tb_from(F32, n, 1, 1, 1, x), ft = tb_from(F32, half, 1, 1, 1, f),
       out = tb_new(F32, n, 2 * half, 1, 1);
    float *ref = ref_new(&out);
    ref_embed(ref, xt.h, ft.h, n, half, swap);
    tb_poison(&out);
    edm_op_embed(B, &out.t, &xt.t, &ft.t, swap);
    char what[64];
    snprintf(what, sizeof what, "N%d half%d %s %s", n, half, positional ? "positional" : "fourier",
             swap ? "[sin|cos]" : "[cos|sin]");
    expect("embed", what, &out, ref);
    free(ref), tb_free(&xt), tb_free(&ft), tb_free(&out);
}

/* scale_rows: in ACT or X32 (c_in * x: x is fp32, the result enters the image path). */
static void case_scale_rows(int n, int c, int h, int w, int in_where, int in_place) {
    tb in = tb_rand(in_where, n, c, h, w, -1, 1), k = tb_rand(F32, n, 1, 1, 1, -2, 2),
       sep = tb_new(ACT, n, c, h, w);
    float *ref = ref_new(&in);
    ref_scale_rows(ref, in.h, k.h, n, (int64_t)c * h * w);
    tb *out = in_place ? &in : &sep;
    if (!in_place) tb_poison(&sep);
    edm_op_scale_rows(B, &out->t, &in.t, &k.t);
    char what[64];
    snprintf(what, sizeof what, "[%d,%d,%d,%d]%s", n, c, h, w,
             in_place ? " out=in" : in_where == X32 ? " f32 in" : "");
    expect("scale_rows", what, out, ref);
    free(ref), tb_free(&in), tb_free(&k), tb_free(&sep);
}

/* precond_out: x, c_skip, c_out and out fp32, F in the image path; iDDPM's F has 2C. */
static void case_precond_out(int n, int c, int h, int w, int cf, double x_amp, double co_amp) {
    tb x = tb_rand(X32, n, c, h, w, -x_amp, x_amp), F = tb_rand(ACT, n, cf, h, w, -1, 1);
    tb cs = tb_rand(F32, n, 1, 1, 1, 0, 1), co = tb_rand(F32, n, 1, 1, 1, -co_amp, co_amp),
       out = tb_new(X32, n, c, h, w);
    float *ref = ref_new(&out);
    ref_precond_out(ref, x.h, F.h, cs.h, co.h, n, c, cf, h * w);
    tb_poison(&out);
    edm_op_precond_out(B, &out.t, &x.t, &F.t, &cs.t, &co.t);
    char what[64];
    snprintf(what, sizeof what, "[%d,%d,%d,%d]%s c_out +-%g", n, c, h, w,
             cf > c ? " F 2C" : "", co_amp);
    expect("precond_out", what, &out, ref);
    free(ref), tb_free(&x), tb_free(&F), tb_free(&cs), tb_free(&co), tb_free(&out);
}

/* upload + download: the storage type's rounding (ACT) or none (F32), odd element count. */
static void case_upload(int where) {
    tb x = tb_new(where, 1, 3, 7, 5);
    float *orig = ref_new(&x);
    for (int64_t i = 0; i < x.numel; i++) orig[i] = (float)(2.0 * urand() - 1.0);
    tb_put(&x, orig);
    expect(where == ACT ? "upload" : "upload_f32", "[1,3,7,5] round trip", &x, orig);
    free(orig), tb_free(&x);
}

/* The declared layout is the memory order: an activation uploaded through upload_act and
 * read back raw has element (n,c,y,x) where the backend's act_layout says (ops.h). */
static void case_layout(void) {
    enum { N = 2, C = 5, H = 3, W = 4 };
    tb x = tb_new(ACT, N, C, H, W);
    float *orig = ref_new(&x), *raw = ref_new(&x), *want = ref_new(&x);
    for (int64_t i = 0; i < x.numel; i++) orig[i] = (float)(2.0 * urand() - 1.0);
    const int nhwc = B->ops->act_layout == EDM_NHWC;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (int y = 0; y < H; y++)
                for (int v = 0; v < W; v++) {
                    const int i = ((n * C + c) * H + y) * W + v;
                    want[nhwc ? ((n * H + y) * W + v) * C + c : i] = orig[i];
                }
    edm_op_upload_act(B, &x.t, orig);
    edm_op_download(B, raw, &x.t);
    B->ops->sync(B->ctx, (char[EDM_OPS_MSG]){0});
    compare("upload", nhwc ? "[2,5,3,4] act memory is NHWC" : "[2,5,3,4] act memory is NCHW", raw,
            want, x.numel);
    free(orig), free(raw), free(want), tb_free(&x);
}

#define FOR_EACH(i, table) for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)

static void run_op_cases(void) {
    if (want_op("conv2d")) {
        FOR_EACH(i, conv_cases) case_conv(&conv_cases[i]);
        case_conv_weights_rewritten(3, 5);
        case_conv_weights_rewritten(1, 5);
        case_conv_weights_rewritten(3, 16); /* Winograd's U on the CPU */
    }
    for (int up = 0; up <= 1; up++)
        if (want_op(up ? "fir_up" : "fir_down"))
            FOR_EACH(i, fir_cases) if (!up || !fir_cases[i].down_only) case_fir(up, &fir_cases[i]);
    if (want_op("linear")) FOR_EACH(i, linear_cases) case_linear(&linear_cases[i]);
    if (want_op("group_norm")) FOR_EACH(i, gn_cases) case_gn(&gn_cases[i]);
    if (want_op("bias_residual")) FOR_EACH(i, br_cases) case_bias_residual(&br_cases[i]);
    if (want_op("concat")) FOR_EACH(i, concat_cases) case_concat(&concat_cases[i]);
    if (want_op("attention")) FOR_EACH(i, attention_cases) case_attention(&attention_cases[i]);
    if (want_op("embed"))
        for (int swap = 0; swap <= 1; swap++) {
            case_embed(3, 9, 0, swap);
            case_embed(5, 8, 0, swap);
            case_embed(5, 7, 1, swap);
        }
    if (want_op("scale_rows")) {
        case_scale_rows(3, 5, 4, 3, ACT, 0);
        case_scale_rows(3, 5, 4, 3, ACT, 1);
        case_scale_rows(3, 3, 5, 7, X32, 0);
        case_scale_rows(3, 3, 5, 7, ACT, 1);
    }
    if (want_op("precond_out"))
        for (int cf = 1; cf <= 2; cf++) {
            case_precond_out(3, 3, 5, 4, 3 * cf, 1.0, 80.0);
            case_precond_out(3, 3, 4, 6, 3 * cf, 3.0, 1.0);
        }
    if (want_op("upload")) case_upload(ACT), case_upload(F32), case_layout();
}

/* ---- 4. per backend x precision: contract, sticky failure, forward passes, networks -------- */

/* What a registry entry promises: an ordinal past its devices is refused, not clamped. (Not
 * devices itself: a CUDA device too old to count as usable still exists.) */
static void test_entry_contract(const edm_backend_info *info) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = info->name;
    o.device = info->devices + 4096;
    edm_backend *b = NULL;
    edm_error err;
    enum edm_status st = edm_backend_new(&o, &b, &err);
    CHECK(st == EDM_EINVAL && b == NULL && strstr(err.message, "does not exist"),
          "%s device %d of %d: status %d, message '%s'", info->name, o.device, info->devices,
          (int)st, err.message);
    edm_backend_free(b);
}

/* What an instance promises: its name, its precision, the activation type that goes with
 * the precision, and consistent memory figures where it knows them. */
static void test_contract(enum edm_precision p) {
    static const enum edm_dtype act_of[4] = {EDM_F32, EDM_F32, EDM_F16, EDM_BF16};
    CHECK(B->name && strncmp(B_label, B->name, strlen(B->name)) == 0 && B->description[0],
          "%s: name '%s', description '%s'", B_label, B->name ? B->name : "(null)",
          B->description);
    /* The cpu backend's bf16 rounds the conv operands only; its activations stay fp32. */
    const enum edm_dtype act = strcmp(B->name, "cpu") == 0 ? EDM_F32 : act_of[p];
    CHECK(B->precision == p && B->act_dtype == act, "%s: precision %d, act dtype %d",
          B_label, (int)B->precision, (int)B->act_dtype);
    size_t f = 0, t = 0;
    edm_error err;
    enum edm_status st = edm_backend_mem_info(B, &f, &t, &err);
    CHECK(st == EDM_EUNSUPPORTED || (st == EDM_OK && t > 0 && f <= t),
          "%s mem_info: status %d, free %zu, total %zu", B_label, (int)st, f, t);
}

static void test_sticky(void) {
    tb in = tb_rand(ACT, 2, 3, 4, 4, -1, 1), w = tb_rand(WGT, 5, 3, 3, 3, -1, 1);
    tb bad = tb_new(ACT, 2, 5, 3, 4); /* Ho should be 4 */
    tb x = tb_rand(ACT, 2, 3, 2, 2, -1, 1), k = tb_rand(F32, 2, 1, 1, 1, -1, 1),
       y = tb_new(ACT, 2, 3, 2, 2);
    edm_backend_clear(B);
    tb_poison(&y);
    double flops = B->flops;
    int64_t ran = B->ops_run;
    edm_op_conv2d(B, &bad.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    CHECK(B->failed, "%s: a conv2d shape mismatch was not rejected", B_label);
    CHECK(strstr(B->message, "conv2d") && strstr(B->message, "shape"), "%s: message '%s'",
          B_label, B->message);
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

/* The optional hooks around one forward pass (CUDA: graph capture and replay). */
static int forward_hook(edm_backend *b, int begin, int n) {
    char msg[EDM_OPS_MSG] = "";
    int (*fn)(void *, int, char *) = begin ? b->ops->forward_begin : b->ops->forward_end;
    if (!fn) return 0;
    if (fn(b->ctx, n, msg)) {
        edm_backend_fail(b, begin ? "forward_begin" : "forward_end", "%s", msg);
        return 1;
    }
    return 0;
}

/*
 * Five forward passes of x -> conv3x3 -> group_norm+silu (in place) -> 1x1 qkv -> attention
 * -> conv1x1 (+h residual, scaled), each inside the forward hooks and with fresh inputs:
 * pass 1 runs eagerly (a graph backend learns the sequence), 2 is captured, 3-4 replayed, and
 * pass 5 changes its last op (out_scale), so a replay diverges there and must fall back to
 * running the ops eagerly, with a correct result. Against the references in double.
 */
static void test_forward(void) {
    enum { N = 2, C = 4, H = 6, W = 6, P = H * W };
    tb x = tb_new(ACT, N, C, H, W), w0 = tb_rand(WGT, C, C, 3, 3, -0.3, 0.3),
       b0 = tb_rand(F32, C, 1, 1, 1, -0.5, 0.5), h = tb_new(ACT, N, C, H, W),
       gamma = tb_rand(F32, C, 1, 1, 1, 0.5, 1.5), beta = tb_rand(F32, C, 1, 1, 1, -0.5, 0.5),
       wqkv = tb_rand(WGT, 3 * C, C, 1, 1, -0.5, 0.5), qkv = tb_new(ACT, N, 3 * C, H, W),
       att = tb_new(ACT, N, C, H, W), wp = tb_rand(WGT, C, C, 1, 1, -0.5, 0.5),
       out = tb_new(ACT, N, C, H, W);
    float r_h[N * C * P], r_hn[N * C * P], r_qkv[N * 3 * C * P], r_att[N * C * P],
        r_out[N * C * P];
    for (int it = 0; it < 5; it++) {
        const float scale = it == 4 ? 0.5f : 0.70710678f;
        for (int64_t i = 0; i < x.numel; i++) x.h[i] = (float)(2.0 * urand() - 1.0);
        tb_store(&x);
        tb_poison(&out);
        if (forward_hook(B, 1, N) == 0) {
            edm_op_conv2d(B, &h.t, &x.t, &w0.t, &b0.t, 1, NULL, 1.0f);
            edm_op_group_norm(B, &h.t, &h.t, &gamma.t, &beta.t, 2, 1e-6f, NULL, NULL, 1);
            edm_op_conv2d(B, &qkv.t, &h.t, &wqkv.t, NULL, 0, NULL, 1.0f);
            edm_op_attention(B, &att.t, &qkv.t, 1);
            edm_op_conv2d(B, &out.t, &att.t, &wp.t, NULL, 0, &h.t, scale);
            forward_hook(B, 0, N);
        }
        ref_conv2d(r_h, x.h, w0.h, b0.h, NULL, 1.0f, N, C, H, W, C, 3, 1);
        ref_group_norm(r_hn, r_h, gamma.h, beta.h, 2, 1e-6f, NULL, NULL, 1, N, C, P);
        ref_conv2d(r_qkv, r_hn, wqkv.h, NULL, NULL, 1.0f, N, C, H, W, 3 * C, 1, 0);
        ref_attention(r_att, r_qkv, N, C, P, 1);
        ref_conv2d(r_out, r_att, wp.h, NULL, r_hn, scale, N, C, H, W, C, 1, 0);
        char what[64];
        snprintf(what, sizeof what, "pass %d%s", it + 1, it == 4 ? " (changed op sequence)" : "");
        expect("forward", what, &out, r_out);
    }
    tb_free(&x), tb_free(&w0), tb_free(&b0), tb_free(&h), tb_free(&gamma), tb_free(&beta);
    tb_free(&wqkv), tb_free(&qkv), tb_free(&att), tb_free(&wp), tb_free(&out);
}

/* Small versions of the published families (random weights): every op in its real context,
 * the engine's workspace and the forward hooks included. */
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
    cfg->channel_mult[0] = 1, cfg->channel_mult[1] = 2;
    cfg->num_attn_res = 1, cfg->attn_resolutions[0] = 8;
    if (which < 2) {
        cfg->model_channels = 16;
    } else { /* DhariwalUNet: heads = channels / 64, so 64 channels at 8x8 get attention */
        cfg->model_channels = 32;
        cfg->label_dim = 10;
    }
    return 0;
}

/* Three small networks, four evaluations each with fresh inputs and sigmas (with graphs:
 * learn, capture, replay twice), against the same networks on the cpu backend. */
static void test_networks(void) {
    static const char *const names[] = {"SongUNet ddpmpp", "SongUNet ncsnpp", "DhariwalUNet"};
    for (int which = 0; which < 3; which++) {
        edm_config cfg;
        if (small_config(which, &cfg)) continue;
        edm_model *model = NULL;
        edm_denoiser *dt = NULL, *dr = NULL;
        edm_error err;
        if (edm_model_new_random(&cfg, 5 + which, &model, &err) ||
            edm_denoiser_new(model, B, 3, &dt, &err) ||
            edm_denoiser_new(model, net_ref, 3, &dr, &err)) {
            CHECK(0, "%s %s: setup: %s", B_label, names[which], err.message);
            edm_denoiser_free(dt), edm_denoiser_free(dr), edm_model_free(model);
            continue;
        }
        const int n = 3, img = cfg.img_channels * cfg.img_resolution * cfg.img_resolution;
        float *x = xmalloc(sizeof(float) * img * n), *a = xmalloc(sizeof(float) * img * n),
              *b = xmalloc(sizeof(float) * img * n);
        float *labels = calloc((size_t)n * (cfg.label_dim ? cfg.label_dim : 1), sizeof(float));
        for (int it = 0; it < 4; it++) {
            static const double sig[4][3] = {
                {80, 1.0, 0.002}, {12.9, 0.3, 5.3}, {0.06, 40.8, 1.9}, {2.5, 0.14, 19.4}};
            double sigma[3];
            for (int i = 0; i < n; i++) {
                sigma[i] = sig[it][i];
                for (int k = 0; k < img; k++)
                    x[i * img + k] = (float)((2.0 * urand() - 1.0) * sigma[i]);
                if (cfg.label_dim) {
                    memset(labels + (size_t)i * cfg.label_dim, 0, sizeof(float) * cfg.label_dim);
                    labels[(size_t)i * cfg.label_dim + (i + it) % cfg.label_dim] = 1;
                }
            }
            const float *lab = cfg.label_dim ? labels : NULL;
            char what[64];
            snprintf(what, sizeof what, "%s, evaluation %d", names[which], it + 1);
            enum edm_status st = edm_denoiser_eval(dt, n, x, sigma, lab, NULL, a, &err);
            CHECK(st == EDM_OK, "%s networks %s: %s", B_label, what, err.message);
            enum edm_status sr = edm_denoiser_eval(dr, n, x, sigma, lab, NULL, b, &err);
            CHECK(sr == EDM_OK, "%s networks %s: cpu: %s", B_label, what, err.message);
            if (st || sr) break;
            compare("networks", what, a, b, (int64_t)img * n);
        }
        free(x), free(a), free(b), free(labels);
        edm_denoiser_free(dt), edm_denoiser_free(dr);
        edm_model_free(model);
    }
}

/* Makes b the backend under test; every backend sees the same random data. */
static void use_backend(edm_backend *b, const char *label) {
    B = b;
    snprintf(B_label, sizeof B_label, "%s", label);
    rng_state = 0x9e3779b97f4a7c15ull;
    printf("== %s: %s\n", label, edm_backend_describe(b));
}

/* Everything a backend gets from being in the registry, on one instance. */
static void run_suite(edm_backend *b, const char *label) {
    use_backend(b, label);
    const int passed = check_passed, failed = check_failed;
    if (want("contract")) test_contract(b->precision);
    run_op_cases();
    if (want("sticky")) test_sticky();
    if (want("forward")) test_forward();
    if (want("networks")) {
        if (strcmp(edm_backend_name(b), edm_backend_name(net_ref)) != 0)
            test_networks();
        else
            printf("%s: networks not compared: this backend is their reference\n", label);
    }
    CHECK(!edm_backend_device_lost(b), "%s: device lost", label);
    printf("-- %s: %d passed, %d failed\n", label, check_passed - passed, check_failed - failed);
}

/* A backend of registry entry `name` in precision p, or NULL (SKIP or failure reported). */
static edm_backend *backend_new(const char *name, enum edm_precision p, int threads,
                                const char *label) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = name;
    o.precision = p;
    o.threads = threads;
    edm_backend *b = NULL;
    edm_error err;
    enum edm_status st = edm_backend_new(&o, &b, &err);
    if (st == EDM_EUNSUPPORTED)
        SKIP("%s: %s", label, err.message);
    else
        CHECK(st == EDM_OK, "%s: %s", label, err.message);
    return st == EDM_OK ? b : NULL;
}

/* ---- 5a. cpu extras ------------------------------------------------------------------------ */

static void test_cpu_constructor(void) {
    edm_backend_options o;
    edm_backend_options_default(&o);
    o.name = "cpu";
    edm_error err;
    edm_backend *b = NULL;
    for (int p = EDM_PRECISION_TF32; p <= EDM_PRECISION_FP16; p++) {
        o.precision = (enum edm_precision)p;
        enum edm_status st = edm_backend_new(&o, &b, &err);
        CHECK(st == EDM_EUNSUPPORTED && b == NULL && strstr(err.message, "fp32"),
              "cpu backend with precision %s: status %d '%s'", edm_precision_name(o.precision),
              (int)st, err.message);
    }
    o.precision = EDM_PRECISION_BF16; /* oneDNN's bf16 convolutions */
    CHECK(edm_backend_new(&o, &b, &err) == EDM_OK && b, "cpu backend bf16: %s", err.message);
    edm_backend_free(b);
    b = NULL;
    o.precision = EDM_PRECISION_FP32;
    o.threads = -1;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_EINVAL && b == NULL, "threads -1 accepted");
    o.threads = 2;
    CHECK(edm_backend_new(&o, &b, &err) == EDM_OK && b, "cpu backend: %s", err.message);
    if (b) {
        const char *d = edm_backend_describe(b);
        CHECK(strncmp(d, "cpu (OpenBLAS", 13) == 0 && strstr(d, "2 threads, fp32)"),
              "description '%s'", d);
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
        double want_exp = exp((double)x);
        float got = edm_cpu_expf(x);
        double ulp = nextafterf((float)want_exp, INFINITY) - (float)want_exp;
        double e = fabs(got - want_exp) / ulp;
        if (e > worst) worst = e, at = x;
    }
    printf("cpu exp: max error %.2f ulp (at %.6g)\n", worst, (double)at);
    CHECK(worst <= 2.0, "cpu exp error %.2f ulp at %g", worst, (double)at);
    CHECK(edm_cpu_expf(-200.0f) == 0.0f && isinf(edm_cpu_expf(200.0f)) &&
              edm_cpu_expf(0.0f) == 1.0f,
          "cpu exp limits");

    /* every width the CPU has against the 4-lane one: silu bit for bit, softmax within an
     * ulp (its double sum is reduced lane-wise) */
    enum { N = 1003 }; /* not a multiple of 4, 8 or 16: the tails too */
    static float a[N], b[N], sa[N], sb[N];
    for (int lanes = 8; lanes <= edm_cpu_vector_lanes(); lanes *= 2) {
        for (int i = 0; i < N; i++) a[i] = b[i] = (float)(40.0 * urand() - 20.0);
        for (int i = 0; i < N; i++) sa[i] = sb[i] = (float)(30.0 * urand() - 15.0);
        edm_cpu_silu_lanes(lanes, a, N);
        edm_cpu_silu_lanes(4, b, N);
        edm_cpu_softmax_lanes(lanes, sa, N);
        edm_cpu_softmax_lanes(4, sb, N);
        double sm = 0;
        for (int i = 0; i < N; i++) {
            const double e = fabs((double)sa[i] - sb[i]) / (nextafterf(sb[i], INFINITY) - sb[i]);
            sm = e > sm ? e : sm;
        }
        const int same = memcmp(a, b, sizeof a) == 0;
        printf("cpu silu, softmax: the %d-lane path %s the 4-lane path, %.0f ulp apart\n",
               lanes, same ? "bit-identical to" : "DIFFERS from", sm);
        CHECK(same, "%d-lane silu differs from the 4-lane silu", lanes);
        CHECK(sm <= 1.0, "%d-lane softmax is %.0f ulp from the 4-lane softmax", lanes, sm);
    }
    CHECK(edm_cpu_vector_lanes() >= 4, "vector width %d", edm_cpu_vector_lanes());

    /* bf16 attention's softmax: each probability within bf16's rounding of the exact one
     * (2^-8 relative, plus its exp's and sum's own error), rows of every tail length */
    static uint16_t pb[N];
    double worst_bf16 = 0;
    for (int n = 1; n <= N; n += n < 40 ? 1 : 97) {
        for (int i = 0; i < n; i++) sa[i] = (float)(30.0 * urand() - 15.0);
        double mx = sa[0], sum = 0;
        for (int i = 0; i < n; i++) mx = sa[i] > mx ? sa[i] : mx;
        for (int i = 0; i < n; i++) sum += exp((double)sa[i] - mx);
        for (int i = 0; i < n; i++) sb[i] = sa[i];
        edm_cpu_softmax_row_bf16(sa, pb, n);
        for (int i = 0; i < n; i++) {
            uint32_t u = (uint32_t)pb[i] << 16;
            float got;
            memcpy(&got, &u, 4);
            const double want = exp((double)sb[i] - mx) / sum;
            const double e = fabs(got - want) / want;
            worst_bf16 = e > worst_bf16 ? e : worst_bf16;
        }
    }
    printf("cpu softmax to bf16 (%d lanes): max relative error %.2e\n", edm_cpu_vector_lanes(),
           worst_bf16);
    CHECK(worst_bf16 <= 0x1p-8 + 1e-5, "bf16 softmax relative error %.2e", worst_bf16);
}

/* Steady state allocates nothing: a repeated conv reuses the backend's scratch (the counter
 * "scratch_allocs" counts every growth of it). */
static void test_cpu_scratch_steady(void) {
    edm_backend *b = backend_new("cpu", EDM_PRECISION_FP32, 2, "cpu/fp32/t2");
    if (!b) return;
    use_backend(b, "cpu/fp32/t2");
    tb in = tb_rand(ACT, 4, 16, 12, 12, -1, 1), w = tb_rand(WGT, 8, 16, 3, 3, -1, 1),
       out = tb_new(ACT, 4, 8, 12, 12);
    edm_op_conv2d(b, &out.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    long first = -1, later = -2;
    int c1 = b->ops->counter(b->ctx, "scratch_allocs", &first);
    for (int i = 0; i < 3; i++) edm_op_conv2d(b, &out.t, &in.t, &w.t, NULL, 1, NULL, 1.0f);
    int c2 = b->ops->counter(b->ctx, "scratch_allocs", &later);
    CHECK(!b->failed && !c1 && !c2 && first > 0 && later == first,
          "scratch reallocated in steady state (%ld, then %ld allocations)", first, later);
    tb_free(&in), tb_free(&w), tb_free(&out);
    edm_backend_free(b);
}

/* precision bf16 runs attention through oneDNN's bf16 matmuls (counter "attention_bf16");
 * its accuracy is the attention cases' in the bf16 pass. */
static void test_cpu_attention_bf16(void) {
    edm_backend *b = backend_new("cpu", EDM_PRECISION_BF16, 2, "cpu/bf16/t2");
    if (!b) return;
    use_backend(b, "cpu/bf16/t2");
    tb qkv = tb_rand(ACT, 2, 3 * 64, 16, 16, -1, 1), out = tb_new(ACT, 2, 64, 16, 16);
    long before = -1, after = -1;
    int c1 = b->ops->counter(b->ctx, "attention_bf16", &before);
    edm_op_attention(b, &out.t, &qkv.t, 2);
    int c2 = b->ops->counter(b->ctx, "attention_bf16", &after);
    CHECK(!b->failed && !c1 && !c2 && after == before + 1,
          "bf16 attention did not run on oneDNN's bf16 matmuls (counter %ld, then %ld)", before,
          after);
    tb_free(&qkv), tb_free(&out);
    edm_backend_free(b);
}

static void cpu_extras(void) {
    printf("== cpu extras\n");
    if (want("cpu_basics")) {
        test_cpu_constructor();
        test_cpu_vec();
        test_cpu_scratch_steady();
        test_cpu_attention_bf16();
    }
    /* The op cases again with 1 and 3 threads: odd team splits (the registry pass used all
     * cores). */
    static const int threads[] = {1, 3};
    for (int i = 0; i < 2; i++) {
        char label[32];
        snprintf(label, sizeof label, "cpu/fp32/t%d", threads[i]);
        edm_backend *b = backend_new("cpu", EDM_PRECISION_FP32, threads[i], label);
        if (!b) continue;
        use_backend(b, label);
        run_op_cases();
        if (want("sticky")) test_sticky();
        edm_backend_free(b);
    }
    /* The conv fallback (NHWC im2col + GEMM: EDM_CPU_ONEDNN=0, read when the backend is made;
     * also what runs for a shape oneDNN refuses), with 2 and 3 threads; then the conv
     * algorithm each precision does not run by default (EDM_CPU_WINOGRAD): fp32 on oneDNN's
     * direct convolution, bf16 through Winograd. */
    static const struct {
        const char *var, *value, *label;
        enum edm_precision p;
        int threads;
    } variants[] = {
        {"EDM_CPU_ONEDNN", "0", "cpu/fp32/im2col/t2", EDM_PRECISION_FP32, 2},
        {"EDM_CPU_ONEDNN", "0", "cpu/fp32/im2col/t3", EDM_PRECISION_FP32, 3},
        {"EDM_CPU_WINOGRAD", "0", "cpu/fp32/direct", EDM_PRECISION_FP32, 2},
        {"EDM_CPU_WINOGRAD", "1", "cpu/bf16/winograd", EDM_PRECISION_BF16, 2},
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        if (!want_op("conv2d") && !want("forward")) break;
        const char *label = variants[i].label;
        char *old = getenv(variants[i].var);
        old = old ? strdup(old) : NULL;
        setenv(variants[i].var, variants[i].value, 1);
        edm_backend *b = backend_new("cpu", variants[i].p, variants[i].threads, label);
        if (old) setenv(variants[i].var, old, 1);
        else unsetenv(variants[i].var);
        free(old);
        if (!b) continue;
        use_backend(b, label);
        if (strcmp(variants[i].var, "EDM_CPU_ONEDNN") == 0)
            CHECK(strstr(edm_backend_describe(b), "oneDNN") &&
                      strstr(edm_backend_describe(b), " off"),
                  "%s: description '%s'", label, edm_backend_describe(b));
        if (want_op("conv2d")) FOR_EACH(j, conv_cases) case_conv(&conv_cases[j]);
        if (want("forward")) test_forward();
        edm_backend_free(b);
    }
}

/* ---- 5b. cuda extras ----------------------------------------------------------------------- */

/* A cuda backend with EDM_CUDA_GRAPHS / EDM_CUDA_CONV set for its creation only (it reads
 * them there); conv NULL leaves the default (im2col + cuBLAS). */
static edm_backend *cuda_new(enum edm_precision p, int graphs, const char *conv,
                             const char *label) {
    char *old_graphs = getenv("EDM_CUDA_GRAPHS"), *old_conv = getenv("EDM_CUDA_CONV");
    old_graphs = old_graphs ? strdup(old_graphs) : NULL;
    old_conv = old_conv ? strdup(old_conv) : NULL;
    setenv("EDM_CUDA_GRAPHS", graphs ? "1" : "0", 1);
    if (conv)
        setenv("EDM_CUDA_CONV", conv, 1);
    else
        unsetenv("EDM_CUDA_CONV");
    edm_backend *b = backend_new("cuda", p, 0, label);
    if (old_graphs) setenv("EDM_CUDA_GRAPHS", old_graphs, 1);
    else unsetenv("EDM_CUDA_GRAPHS");
    if (old_conv) setenv("EDM_CUDA_CONV", old_conv, 1);
    else unsetenv("EDM_CUDA_CONV");
    free(old_graphs), free(old_conv);
    if (b) use_backend(b, label);
    return b;
}

/* An impossible allocation fails cleanly and leaves the backend usable; a workspace that
 * cannot fit is out of memory, with the largest batch that would. */
static void test_cuda_memory(void) {
    edm_backend *b = cuda_new(EDM_PRECISION_FP32, 0, NULL, "cuda/fp32");
    if (!b) return;
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
    edm_config cfg;
    edm_model *model = NULL;
    edm_denoiser *den = NULL;
    edm_error err;
    if (!small_config(0, &cfg)) {
        cfg.img_resolution = 256;
        if (edm_model_new_random(&cfg, 1, &model, &err) == EDM_OK) {
            enum edm_status st = edm_denoiser_new(model, b, 65536, &den, &err);
            const char *fits = strstr(err.message, "largest batch that fits is about ");
            CHECK(st == EDM_ENOMEM && !den && fits && atol(fits + 33) < 65536,
                  "batch 65536 at 256x256: status %d, message '%s'", (int)st, err.message);
            edm_denoiser_free(den);
            edm_model_free(model);
        }
    }
    edm_backend_free(b);
}

static void graph_counters(long c[3]) {
    static const char *const names[3] = {"graph_captures", "graph_replays", "graph_fallbacks"};
    for (int i = 0; i < 3; i++) {
        c[i] = 0;
        edm_backend_counter(B, names[i], &c[i], NULL);
    }
}

/* Counter changes since c0: captures, replays, fallbacks as expected. */
static void check_graph_counters(const char *what, const long c0[3], long cap, long rep,
                                 long fb) {
    long c1[3];
    graph_counters(c1);
    CHECK(c1[0] - c0[0] == cap && c1[1] - c0[1] == rep && c1[2] - c0[2] == fb,
          "%s %s: %ld captures, %ld replays, %ld fallbacks (want %ld, %ld, %ld)", B_label, what,
          c1[0] - c0[0], c1[1] - c0[1], c1[2] - c0[2], cap, rep, fb);
}

static void cuda_extras(void) {
    printf("== cuda extras\n");
    if (want("cuda_memory")) test_cuda_memory();

    /* Convolutions (and, in fp16, whole networks) through cuDNN, which is opt-in and loaded at
     * run time: where it cannot be used, creating the backend says why (a SKIP). */
    for (int p = EDM_PRECISION_TF32; p <= EDM_PRECISION_BF16; p++) {
        if (only_precision >= 0 && p != only_precision) continue;
        if (!want_op("conv2d") && !(p == EDM_PRECISION_FP16 && want("networks"))) continue;
        char label[32];
        snprintf(label, sizeof label, "cuda/%s/cudnn", edm_precision_name((enum edm_precision)p));
        edm_backend *b = cuda_new((enum edm_precision)p, 0, "cudnn", label);
        if (!b) continue;
        if (want_op("conv2d")) FOR_EACH(i, conv_cases) case_conv(&conv_cases[i]);
        if (p == EDM_PRECISION_FP16 && want("networks")) test_networks();
        edm_backend_free(b);
    }

    /* CUDA graphs: off, the counters stay at 0; on (fp32 and fp16), the forward passes are
     * learnt, captured once, replayed twice and fall back once; each network is learnt,
     * captured once and replayed twice with no fallback. */
    if (!want("graphs")) return;
    static const enum edm_precision graph_precisions[] = {EDM_PRECISION_FP32, EDM_PRECISION_FP16};
    FOR_EACH(i, graph_precisions) {
        const enum edm_precision p = graph_precisions[i];
        if (only_precision >= 0 && (int)p != only_precision) continue;
        for (int graphs = p == EDM_PRECISION_FP32 ? 0 : 1; graphs <= 1; graphs++) {
            char label[32];
            snprintf(label, sizeof label, "cuda/%s/graphs%s", edm_precision_name(p),
                     graphs ? "" : "-off");
            edm_backend *b = cuda_new(p, graphs, NULL, label);
            if (!b) continue;
            long c0[3];
            graph_counters(c0);
            test_forward();
            check_graph_counters("forward passes", c0, graphs, 2 * graphs, graphs);
            if (graphs && want("networks")) {
                graph_counters(c0);
                test_networks();
                check_graph_counters("networks", c0, 3, 6, 0);
            }
            edm_backend_free(b);
        }
    }
}

/* ---- 6. main: the registry x precisions, then each backend's extras ------------------------ */

static const struct {
    const char *backend;
    void (*run)(void);
} extras[] = {{"cpu", cpu_extras}, {"cuda", cuda_extras}};

static int usage(void) {
    fprintf(stderr, "usage: test_ops [--backend NAME] [--precision fp32|tf32|fp16|bf16] "
                    "[--only PART[,PART...]]\n(see the comment at the top of test_ops.c)\n");
    return 2;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0); /* keep the table and FAIL lines (stderr) in order */
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--backend") == 0) {
            only_backend = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--precision") == 0) {
            enum edm_precision p;
            if (edm_precision_parse(argv[++i], &p)) return usage();
            only_precision = (int)p;
        } else if (i + 1 < argc && strcmp(argv[i], "--only") == 0) {
            only_parts = argv[++i];
        } else {
            return usage();
        }
    }
    init_filters();
    /* The CUDA backend's scratch budget, small, so conv2d and attention split their batches
     * into chunks (ignored by the other backends). */
    setenv("EDM_CUDA_SCRATCH_MB", "16", 1);

    net_ref = backend_new("cpu", EDM_PRECISION_FP32, 0, "cpu/fp32 (network reference)");
    if (!net_ref) return check_finish();

    const int entries = edm_backend_registry_count();
    for (int e = 0; e < entries; e++) {
        edm_backend_info info;
        edm_error err;
        if (edm_backend_registry_get(e, &info, &err) != EDM_OK) {
            CHECK(0, "registry entry %d: %s", e, err.message);
            continue;
        }
        if (only_backend && strcmp(only_backend, info.name) != 0) continue;
        if (info.devices == 0) {
            edm_backend_options o;
            edm_backend_options_default(&o);
            o.name = info.name;
            edm_backend *b = NULL;
            if (edm_backend_new(&o, &b, &err) == EDM_OK) edm_backend_free(b);
            SKIP("%s: every op test skipped: %s%s%s", info.name,
                 info.compiled ? "no usable device (" : "", err.message, info.compiled ? ")" : "");
            continue;
        }
        if (want("contract")) test_entry_contract(&info);
        for (int p = EDM_PRECISION_FP32; p <= EDM_PRECISION_BF16; p++) {
            if (only_precision >= 0 && p != only_precision) continue;
            char label[32];
            snprintf(label, sizeof label, "%s/%s", info.name,
                     edm_precision_name((enum edm_precision)p));
            edm_backend *b = backend_new(info.name, (enum edm_precision)p, 0, label);
            if (!b) continue;
            run_suite(b, label);
            edm_backend_free(b);
        }
        FOR_EACH(i, extras) if (strcmp(extras[i].backend, info.name) == 0) extras[i].run();
    }
    edm_backend_free(net_ref);
    return check_finish();
}
