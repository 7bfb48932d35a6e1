/*
 * ops.c - the op front-end: shape checks, FLOP counting, sticky status, dispatch.
 *
 * Every edm_op_* checks its operands once against the semantics documented in ops.h, counts
 * its floating-point operations, and calls the backend's table. After the first failure
 * (a shape mismatch here, or an error from the backend) the backend's status is sticky and
 * later ops return at once, so the network code is straight-line and checks once per pass.
 *
 * The null backend (at the end) does no arithmetic and touches no memory: running a forward
 * pass on it validates the whole op graph against the model, counts FLOPs and, with a
 * measuring arena, sizes the workspace.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"

void edm_backend_fail(edm_backend *b, const char *op, const char *fmt, ...) {
    if (b->failed) return;
    b->failed = 1;
    int k = snprintf(b->message, sizeof b->message, "%s: ", op);
    if (k < 0 || (size_t)k >= sizeof b->message) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->message + k, sizeof b->message - (size_t)k, fmt, ap);
    va_end(ap);
}

void edm_backend_clear(edm_backend *b) {
    if (b->device_lost) return; /* an unrecoverable error stays */
    b->failed = 0;
    b->message[0] = '\0';
}

size_t edm_dtype_size(enum edm_dtype t) {
    switch (t) {
    case EDM_F32: return 4;
    case EDM_F16: return 2;
    case EDM_BF16: return 2;
    }
    EDM_ASSERT(!"bad dtype");
    return 4;
}

/* ---- shape helpers ------------------------------------------------------------------- */

#define SHAPE_FMT "[%d,%d,%d,%d]"
#define SHAPE_ARG(t) (t)->n, (t)->c, (t)->h, (t)->w

static int same_shape(const edm_tensor *a, const edm_tensor *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

static int valid(const edm_tensor *t) {
    return t && t->n > 0 && t->c > 0 && t->h > 0 && t->w > 0;
}

/* Returns 1 if the op may run; records the failure and returns 0 otherwise. */
static int check(edm_backend *b, const char *op, int ok, const char *what) {
    if (b->failed) return 0;
    if (!ok) {
        edm_backend_fail(b, op, "shape mismatch: %s", what);
        return 0;
    }
    return 1;
}

/* Runs the backend's op and makes a failure sticky. */
#define DISPATCH(b, opname, call)                                                              \
    do {                                                                                       \
        char msg_[EDM_OPS_MSG];                                                                \
        msg_[0] = '\0';                                                                        \
        b->ops_run++;                                                                          \
        if ((call) != 0) edm_backend_fail(b, opname, "%s", msg_[0] ? msg_ : "failed");          \
    } while (0)
#define MSG msg_

/* ---- ops ------------------------------------------------------------------------------- */

void edm_op_conv2d(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, int pad, const edm_tensor *residual, float out_scale) {
    const char *op = "conv2d";
    if (!check(b, op, valid(out) && valid(in) && valid(weight), "missing operand")) return;
    int k = weight->h;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " weight " SHAPE_FMT " pad %d out " SHAPE_FMT,
             SHAPE_ARG(in), SHAPE_ARG(weight), pad, SHAPE_ARG(out));
    int ok = weight->w == k && weight->c == in->c && weight->n == out->c && out->n == in->n &&
             pad >= 0 && out->h == in->h + 2 * pad - k + 1 && out->w == in->w + 2 * pad - k + 1;
    if (bias) ok = ok && valid(bias) && edm_tensor_numel(bias) == out->c;
    if (residual) ok = ok && same_shape(residual, out);
    if (!check(b, op, ok, what)) return;
    b->flops += 2.0 * out->n * out->c * out->h * out->w * (double)in->c * k * k;
    DISPATCH(b, op, b->ops->conv2d(b->ctx, out, in, weight, bias, pad, residual, out_scale, MSG));
}

static int fir_filter_ok(const edm_tensor *f) {
    return valid(f) && f->n == 1 && f->c == 1 && f->h == f->w && f->h >= 1 && f->h <= 8;
}

void edm_op_fir_down(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                     const edm_tensor *filter, int pad) {
    const char *op = "fir_down";
    if (!check(b, op, valid(out) && valid(in) && fir_filter_ok(filter), "bad operand")) return;
    int L = filter->h;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " filter %d pad %d out " SHAPE_FMT, SHAPE_ARG(in), L,
             pad, SHAPE_ARG(out));
    int ok = out->n == in->n && out->c == in->c && pad >= 0 &&
             out->h == (in->h + 2 * pad - L) / 2 + 1 && out->w == (in->w + 2 * pad - L) / 2 + 1;
    if (!check(b, op, ok, what)) return;
    b->flops += 2.0 * (double)edm_tensor_numel(out) * L * L;
    DISPATCH(b, op, b->ops->fir_down(b->ctx, out, in, filter, pad, MSG));
}

void edm_op_fir_up(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                   int pad) {
    const char *op = "fir_up";
    if (!check(b, op, valid(out) && valid(in) && fir_filter_ok(filter), "bad operand")) return;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(in), SHAPE_ARG(out));
    int ok = out->n == in->n && out->c == in->c && out->h == 2 * in->h && out->w == 2 * in->w &&
             pad >= 0;
    if (!check(b, op, ok, what)) return;
    b->flops += 2.0 * (double)edm_tensor_numel(in) * filter->h * filter->h;
    DISPATCH(b, op, b->ops->fir_up(b->ctx, out, in, filter, pad, MSG));
}

void edm_op_linear(edm_backend *b, edm_tensor *out, const edm_tensor *in, const edm_tensor *weight,
                   const edm_tensor *bias, float alpha, float beta, int act_silu) {
    const char *op = "linear";
    if (!check(b, op, valid(out) && valid(in) && valid(weight), "missing operand")) return;
    int64_t K = (int64_t)in->c * in->h * in->w;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " weight " SHAPE_FMT " out " SHAPE_FMT,
             SHAPE_ARG(in), SHAPE_ARG(weight), SHAPE_ARG(out));
    int ok = (int64_t)weight->c * weight->h * weight->w == K && out->n == in->n &&
             (int64_t)out->c * out->h * out->w == weight->n && (beta == 0.0f || beta == 1.0f) &&
             in->dtype == EDM_F32 && out->dtype == EDM_F32 && weight->dtype == EDM_F32;
    if (bias) ok = ok && edm_tensor_numel(bias) == weight->n;
    if (!check(b, op, ok, what)) return;
    b->flops += 2.0 * in->n * (double)K * weight->n;
    DISPATCH(b, op, b->ops->linear(b->ctx, out, in, weight, bias, alpha, beta, act_silu, MSG));
}

void edm_op_group_norm(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                       const edm_tensor *gamma, const edm_tensor *beta, int groups, float eps,
                       const edm_tensor *pre_add, const edm_tensor *scale_shift, int act_silu) {
    const char *op = "group_norm";
    if (!check(b, op, valid(out) && valid(in) && valid(gamma) && valid(beta), "missing operand"))
        return;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " groups %d out " SHAPE_FMT, SHAPE_ARG(in), groups,
             SHAPE_ARG(out));
    int ok = same_shape(in, out) && groups > 0 && in->c % groups == 0 &&
             edm_tensor_numel(gamma) == in->c && edm_tensor_numel(beta) == in->c;
    if (pre_add) ok = ok && pre_add->n == in->n && (int64_t)pre_add->c * pre_add->h * pre_add->w == in->c;
    if (scale_shift)
        ok = ok && scale_shift->n == in->n &&
             (int64_t)scale_shift->c * scale_shift->h * scale_shift->w == 2 * (int64_t)in->c;
    if (!check(b, op, ok, what)) return;
    b->flops += 8.0 * (double)edm_tensor_numel(in);
    DISPATCH(b, op, b->ops->group_norm(b->ctx, out, in, gamma, beta, groups, eps, pre_add,
                                       scale_shift, act_silu, MSG));
}

void edm_op_bias_residual(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                          const edm_tensor *bias, const edm_tensor *residual, float scale) {
    const char *op = "bias_residual";
    if (!check(b, op, valid(out) && valid(in), "missing operand")) return;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(in), SHAPE_ARG(out));
    int ok = same_shape(in, out);
    if (bias) ok = ok && edm_tensor_numel(bias) == out->c;
    if (residual) ok = ok && same_shape(residual, out);
    if (!check(b, op, ok, what)) return;
    b->flops += 3.0 * (double)edm_tensor_numel(out);
    DISPATCH(b, op, b->ops->bias_residual(b->ctx, out, in, bias, residual, scale, MSG));
}

void edm_op_concat(edm_backend *b, edm_tensor *out, const edm_tensor *a, const edm_tensor *bt) {
    const char *op = "concat";
    if (!check(b, op, valid(out) && valid(a) && valid(bt), "missing operand")) return;
    char what[200];
    snprintf(what, sizeof what, "a " SHAPE_FMT " b " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(a),
             SHAPE_ARG(bt), SHAPE_ARG(out));
    int ok = a->n == bt->n && a->h == bt->h && a->w == bt->w && out->n == a->n &&
             out->h == a->h && out->w == a->w && out->c == a->c + bt->c;
    if (!check(b, op, ok, what)) return;
    DISPATCH(b, op, b->ops->concat(b->ctx, out, a, bt, MSG));
}

void edm_op_attention(edm_backend *b, edm_tensor *out, const edm_tensor *qkv, int heads) {
    const char *op = "attention";
    if (!check(b, op, valid(out) && valid(qkv), "missing operand")) return;
    char what[200];
    snprintf(what, sizeof what, "qkv " SHAPE_FMT " heads %d out " SHAPE_FMT, SHAPE_ARG(qkv), heads,
             SHAPE_ARG(out));
    int ok = heads > 0 && qkv->n == out->n && qkv->c == 3 * out->c && qkv->h == out->h &&
             qkv->w == out->w && out->c % heads == 0;
    if (!check(b, op, ok, what)) return;
    double P = (double)out->h * out->w;
    b->flops += 4.0 * out->n * P * P * out->c + 5.0 * out->n * heads * P * P;
    DISPATCH(b, op, b->ops->attention(b->ctx, out, qkv, heads, MSG));
}

void edm_op_embed(edm_backend *b, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs,
                  int swap) {
    const char *op = "embed";
    if (!check(b, op, valid(out) && valid(x) && valid(freqs), "missing operand")) return;
    char what[200];
    snprintf(what, sizeof what, "x " SHAPE_FMT " freqs " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(x),
             SHAPE_ARG(freqs), SHAPE_ARG(out));
    int ok = edm_tensor_numel(x) == out->n &&
             (int64_t)out->c * out->h * out->w == 2 * edm_tensor_numel(freqs) &&
             out->dtype == EDM_F32;
    if (!check(b, op, ok, what)) return;
    b->flops += 20.0 * (double)edm_tensor_numel(out);
    DISPATCH(b, op, b->ops->embed(b->ctx, out, x, freqs, swap, MSG));
}

void edm_op_scale_rows(edm_backend *b, edm_tensor *out, const edm_tensor *in,
                       const edm_tensor *coef) {
    const char *op = "scale_rows";
    if (!check(b, op, valid(out) && valid(in) && valid(coef), "missing operand")) return;
    char what[200];
    snprintf(what, sizeof what, "in " SHAPE_FMT " coef " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(in),
             SHAPE_ARG(coef), SHAPE_ARG(out));
    int ok = same_shape(in, out) && edm_tensor_numel(coef) == in->n;
    if (!check(b, op, ok, what)) return;
    b->flops += (double)edm_tensor_numel(out);
    DISPATCH(b, op, b->ops->scale_rows(b->ctx, out, in, coef, MSG));
}

void edm_op_precond_out(edm_backend *b, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                        const edm_tensor *c_skip, const edm_tensor *c_out) {
    const char *op = "precond_out";
    if (!check(b, op, valid(out) && valid(x) && valid(F) && valid(c_skip) && valid(c_out),
               "missing operand"))
        return;
    char what[200];
    snprintf(what, sizeof what, "x " SHAPE_FMT " F " SHAPE_FMT " out " SHAPE_FMT, SHAPE_ARG(x),
             SHAPE_ARG(F), SHAPE_ARG(out));
    int ok = same_shape(x, out) && F->n == x->n && F->h == x->h && F->w == x->w && F->c >= x->c &&
             edm_tensor_numel(c_skip) == x->n && edm_tensor_numel(c_out) == x->n;
    if (!check(b, op, ok, what)) return;
    b->flops += 3.0 * (double)edm_tensor_numel(out);
    DISPATCH(b, op, b->ops->precond_out(b->ctx, out, x, F, c_skip, c_out, MSG));
}

void edm_op_upload(edm_backend *b, edm_tensor *dst, const float *src) {
    if (!check(b, "upload", valid(dst) && src != NULL, "missing operand")) return;
    DISPATCH(b, "upload", b->ops->upload(b->ctx, dst, src, MSG));
}

void edm_op_download(edm_backend *b, float *dst, const edm_tensor *src) {
    if (!check(b, "download", valid(src) && dst != NULL, "missing operand")) return;
    DISPATCH(b, "download", b->ops->download(b->ctx, dst, src, MSG));
}

/* A backend without its own conversion must be NCHW: the raw copies then serve (and every
 * tensor with h = w = 1 reads the same in both orders). */
void edm_op_upload_act(edm_backend *b, edm_tensor *dst, const float *src) {
    const edm_ops *o = b->ops;
    if (!check(b, "upload_act", valid(dst) && src != NULL, "missing operand") ||
        !check(b, "upload_act", o->upload_act || o->act_layout == EDM_NCHW, "no conversion"))
        return;
    DISPATCH(b, "upload_act", (o->upload_act ? o->upload_act : o->upload)(b->ctx, dst, src, MSG));
}

void edm_op_download_act(edm_backend *b, float *dst, const edm_tensor *src) {
    const edm_ops *o = b->ops;
    if (!check(b, "download_act", valid(src) && dst != NULL, "missing operand") ||
        !check(b, "download_act", o->download_act || o->act_layout == EDM_NCHW, "no conversion"))
        return;
    DISPATCH(b, "download_act",
             (o->download_act ? o->download_act : o->download)(b->ctx, dst, src, MSG));
}

/* ---- the null backend ------------------------------------------------------------------ */

static void *null_alloc(void *ctx, size_t bytes) {
    (void)ctx;
    (void)bytes;
    return NULL;
}
static void null_free(void *ctx, void *p) {
    (void)ctx;
    (void)p;
}
static int null_upload(void *ctx, edm_tensor *d, const float *s, char *m) {
    (void)ctx, (void)d, (void)s, (void)m;
    return 0;
}
static int null_download(void *ctx, float *d, const edm_tensor *s, char *m) {
    (void)ctx, (void)d, (void)s, (void)m;
    return 0;
}
static int null_sync(void *ctx, char *m) {
    (void)ctx, (void)m;
    return 0;
}
static int null_conv2d(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *w,
                       const edm_tensor *bi, int p, const edm_tensor *r, float s, char *m) {
    (void)ctx, (void)o, (void)i, (void)w, (void)bi, (void)p, (void)r, (void)s, (void)m;
    return 0;
}
static int null_fir(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *f, int p,
                    char *m) {
    (void)ctx, (void)o, (void)i, (void)f, (void)p, (void)m;
    return 0;
}
static int null_linear(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *w,
                       const edm_tensor *bi, float a, float be, int act, char *m) {
    (void)ctx, (void)o, (void)i, (void)w, (void)bi, (void)a, (void)be, (void)act, (void)m;
    return 0;
}
static int null_group_norm(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *g,
                           const edm_tensor *be, int gr, float e, const edm_tensor *pa,
                           const edm_tensor *ss, int act, char *m) {
    (void)ctx, (void)o, (void)i, (void)g, (void)be, (void)gr, (void)e, (void)pa, (void)ss;
    (void)act, (void)m;
    return 0;
}
static int null_bias_residual(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *bi,
                              const edm_tensor *r, float s, char *m) {
    (void)ctx, (void)o, (void)i, (void)bi, (void)r, (void)s, (void)m;
    return 0;
}
static int null_concat(void *ctx, edm_tensor *o, const edm_tensor *a, const edm_tensor *bt,
                       char *m) {
    (void)ctx, (void)o, (void)a, (void)bt, (void)m;
    return 0;
}
static int null_attention(void *ctx, edm_tensor *o, const edm_tensor *q, int h, char *m) {
    (void)ctx, (void)o, (void)q, (void)h, (void)m;
    return 0;
}
static int null_embed(void *ctx, edm_tensor *o, const edm_tensor *x, const edm_tensor *f, int s,
                      char *m) {
    (void)ctx, (void)o, (void)x, (void)f, (void)s, (void)m;
    return 0;
}
static int null_scale_rows(void *ctx, edm_tensor *o, const edm_tensor *i, const edm_tensor *c,
                           char *m) {
    (void)ctx, (void)o, (void)i, (void)c, (void)m;
    return 0;
}
static int null_precond_out(void *ctx, edm_tensor *o, const edm_tensor *x, const edm_tensor *F,
                            const edm_tensor *cs, const edm_tensor *co, char *m) {
    (void)ctx, (void)o, (void)x, (void)F, (void)cs, (void)co, (void)m;
    return 0;
}
static void null_destroy(void *ctx) {
    (void)ctx;
}

static const edm_ops null_ops = {
    .name = "null",
    .act_layout = EDM_NCHW, /* no memory: any layout would do */
    .alloc = null_alloc,
    .free = null_free,
    .upload = null_upload,
    .download = null_download,
    .sync = null_sync,
    .conv2d = null_conv2d,
    .fir_down = null_fir,
    .fir_up = null_fir,
    .linear = null_linear,
    .group_norm = null_group_norm,
    .bias_residual = null_bias_residual,
    .concat = null_concat,
    .attention = null_attention,
    .embed = null_embed,
    .scale_rows = null_scale_rows,
    .precond_out = null_precond_out,
    .forward_begin = NULL,
    .forward_end = NULL,
    .destroy = null_destroy,
};

edm_backend *edm_backend_null_new(void) {
    edm_backend *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ops = &null_ops;
    b->name = "null";
    b->precision = EDM_PRECISION_FP32;
    b->act_dtype = EDM_F32;
    snprintf(b->description, sizeof b->description, "null (shape checks and FLOP counting)");
    return b;
}
