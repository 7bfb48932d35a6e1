/*
 * cuda_misc.cu - the element-wise and resampling ops of the CUDA backend: fir_down, fir_up,
 * bias_residual, concat, embed, scale_rows, precond_out, and dtype conversion.
 *
 * These are memory-bound and small next to the convolutions, so each is one kernel with one
 * thread per output element, images on the grid's z axis (32-bit index arithmetic).
 * Activations are NHWC (cuda_layout.cu): threads are numbered channels fastest, so
 * neighbouring threads touch neighbouring memory. Operands are read and written through
 * run-time dtype helpers (edm_ld/edm_st), so any mix of f32/f16/bf16 tensors works, as the
 * ops.h dtype rules mix them (for example precond_out: F in the activation type, x and the
 * output D in f32). Formulas follow ops.h and spec 1.2 / 1.6 / 1.7 / 2.1 exactly; embed uses
 * the accurate sinf/cosf (never __sinf: the arguments reach hundreds of radians).
 */
#include "cuda_internal.h"

/* Launch geometry of these kernels: x covers the items of one image, z the image
 * (n0 + blockIdx.z); all index arithmetic inside an image is 32-bit. */

/* out[n,m,q,c] = sum_{a,b} f[a,b] * in[n, 2m+a-pad, 2q+b-pad, c], zero outside. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_fir_down_kernel(void *out, int odt, const void *in, int idt, const float *__restrict__ f,
                        int L, int pad, int C, int H, int W, int Ho, int Wo, int n0) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= Ho * Wo * C) return;
    const int p = r / C, c = r - p * C;
    const int m = p / Wo, q = p - m * Wo;
    const size_t ib = (size_t)(n0 + blockIdx.z) * H * W * C + c;
    float acc = 0.0f;
    for (int a = 0; a < L; a++) {
        const int y = 2 * m + a - pad;
        if (y < 0 || y >= H) continue;
        for (int b = 0; b < L; b++) {
            const int x = 2 * q + b - pad;
            if (x < 0 || x >= W) continue;
            acc += f[a * L + b] * edm_ld(in, idt, (int64_t)(ib + ((size_t)y * W + x) * C));
        }
    }
    edm_st(out, odt, (int64_t)((size_t)(n0 + blockIdx.z) * Ho * Wo * C + r), acc);
}

/* out[n,Y,X,c] = sum over 2i+a-pad = Y, 2j+b-pad = X of 4 f[a,b] in[n,i,j,c]; out is 2H x 2W. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_fir_up_kernel(void *out, int odt, const void *in, int idt, const float *__restrict__ f,
                      int L, int pad, int C, int H, int W, int n0) {
    const int Ho = 2 * H, Wo = 2 * W;
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= Ho * Wo * C) return;
    const int p = r / C, c = r - p * C;
    const int Y = p / Wo, X = p - Y * Wo;
    const size_t ib = (size_t)(n0 + blockIdx.z) * H * W * C + c;
    float acc = 0.0f;
    for (int a = 0; a < L; a++) {
        const int ty = Y + pad - a; /* = 2i */
        if (ty < 0 || (ty & 1)) continue;
        const int y = ty >> 1;
        if (y >= H) continue;
        for (int b = 0; b < L; b++) {
            const int tx = X + pad - b;
            if (tx < 0 || (tx & 1)) continue;
            const int x = tx >> 1;
            if (x >= W) continue;
            acc += 4.0f * f[a * L + b] * edm_ld(in, idt, (int64_t)(ib + ((size_t)y * W + x) * C));
        }
    }
    edm_st(out, odt, (int64_t)((size_t)(n0 + blockIdx.z) * Ho * Wo * C + r), acc);
}

/* out = (in + bias[c] + res) * scale over [N, P, C]; out may alias in or res. PC = P*C. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_bias_residual_kernel(void *out, int odt, const void *in, int idt,
                             const float *__restrict__ bias, const void *res, int rdt, float scale,
                             int C, int PC, int n0) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= PC) return;
    const int64_t i = (int64_t)(n0 + blockIdx.z) * PC + r;
    float v = edm_ld(in, idt, i);
    if (bias) v += bias[r % C];
    if (res) v += edm_ld(res, rdt, i);
    edm_st(out, odt, i, v * scale);
}

/* out[n, P, Ca+Cb] = [a | b] per pixel. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_concat_kernel(void *out, int odt, const void *a, int adt, const void *b, int bdt, int Ca,
                      int Cb, int P, int n0) {
    const int C = Ca + Cb;
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= P * C) return;
    const int p = r / C, ch = r - p * C;
    const int64_t n = n0 + (int64_t)blockIdx.z;
    const float v = ch < Ca ? edm_ld(a, adt, (n * P + p) * Ca + ch)
                            : edm_ld(b, bdt, (n * P + p) * Cb + (ch - Ca));
    edm_st(out, odt, n * P * C + r, v);
}

/* out[n, 2*half] = [cos(x f) | sin(x f)], or [sin | cos] when swap. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_embed_kernel(void *out, int odt, const void *x, int xdt, const void *freqs, int fdt,
                     int half, int swap, int n0) {
    const int j = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (j >= 2 * half) return;
    const int64_t n = n0 + (int64_t)blockIdx.z;
    const int first = j < half;
    const int fi = first ? j : j - half;
    /* The product is rounded to fp32 before the accurate sinf/cosf, as the reference. */
    const float arg = edm_ld(x, xdt, n) * edm_ld(freqs, fdt, fi);
    const float v = (first != (swap != 0)) ? cosf(arg) : sinf(arg);
    edm_st(out, odt, n * 2 * half + j, v);
}

/* out[n, r] = coef[n] * in[n, r], r < row. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_scale_rows_kernel(void *out, int odt, const void *in, int idt, const void *coef, int cdt,
                          int row, int n0) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= row) return;
    const int64_t n = n0 + (int64_t)blockIdx.z, i = n * row + r;
    edm_st(out, odt, i, edm_ld(coef, cdt, n) * edm_ld(in, idt, i));
}

/* out[n,p,c] = c_skip[n] x[n,p,c] + c_out[n] F[n,p,c] for c < C; F has CF >= C channels (a
 * pixel stride of CF). row = P*C. */
__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_precond_out_kernel(void *out, int odt, const void *x, int xdt, const void *F, int fdt,
                           const void *cs, int csdt, const void *co, int codt, int C, int CF,
                           int row, int n0) {
    const int r = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (r >= row) return;
    const int p = r / C, ch = r - p * C;
    const int64_t n = n0 + (int64_t)blockIdx.z, i = n * row + r;
    const float v = edm_ld(cs, csdt, n) * edm_ld(x, xdt, i) +
                    edm_ld(co, codt, n) * edm_ld(F, fdt, (n * (row / C) + p) * CF + ch);
    edm_st(out, odt, i, v);
}

__global__ void __launch_bounds__(EDM_CUDA_THREADS)
    edm_convert_kernel(void *dst, int ddt, const void *src, int sdt, int64_t total) {
    EDM_CUDA_FOR(i, total) { edm_st(dst, ddt, i, edm_ld(src, sdt, i)); }
}

int edm_cuda_convert(edm_cuda *c, char *msg, void *dst, enum edm_dtype dt, const void *src,
                     enum edm_dtype st, int64_t count) {
    EDM_LAUNCH(edm_convert_kernel, edm_cuda_blocks(c, count), EDM_CUDA_THREADS, 0, c->stream, dst,
               (int)dt, src, (int)st, count);
    return edm_cuda_check(c, msg, "dtype conversion");
}

/* An image's elements are indexed with 32-bit arithmetic by these kernels. */
static int image_fits(const edm_tensor *t, char *msg) {
    if ((int64_t)t->h * t->w * t->c <= 0x7fffffff) return 0;
    return edm_cuda_fail(msg, "image too large (%d x %d x %d)", t->c, t->h, t->w);
}

int edm_cuda_epilogue(edm_cuda *c, char *msg, edm_tensor *out, const edm_tensor *in,
                      const float *bias, const edm_tensor *residual, float scale) {
    if (image_fits(out, msg)) return 1;
    const int PC = out->h * out->w * out->c;
    const unsigned th = edm_cuda_row_threads(PC);
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        EDM_LAUNCH(edm_bias_residual_kernel, edm_cuda_grid(PC, th, 1, nz), th, 0, c->stream,
                   out->data, (int)out->dtype, in->data, (int)in->dtype, bias,
                   residual ? residual->data : NULL, residual ? (int)residual->dtype : 0, scale,
                   out->c, PC, n0);
    });
    return 0;
}

/* Filters, biases and coefficients are read as f32 pointers by some kernels. */
static int need_f32(const edm_tensor *t, const char *name, char *msg) {
    if (t && t->dtype != EDM_F32) return edm_cuda_fail(msg, "%s must be f32", name);
    return 0;
}

/* fir_down and fir_up: the same checks and launch shape, one kernel each. */
static int fir_resample(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                        int pad, bool up, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(up ? EDM_CUDA_OP_FIR_UP : EDM_CUDA_OP_FIR_DOWN, out, in, filter,
                                    NULL, NULL, NULL);
    r.i[0] = pad;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg) || need_f32(filter, "filter", msg)) return 1;
    if (in->data == out->data) return edm_cuda_fail(msg, "in and out must not alias");
    if (image_fits(out, msg) || image_fits(in, msg)) return 1;
    const int per = out->h * out->w * out->c;
    const unsigned th = edm_cuda_row_threads(per);
    const float *f = (const float *)filter->data;
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        const dim3 grid = edm_cuda_grid(per, th, 1, nz);
        if (up)
            EDM_LAUNCH(edm_fir_up_kernel, grid, th, 0, c->stream, out->data, (int)out->dtype, in->data,
                       (int)in->dtype, f, filter->h, pad, in->c, in->h, in->w, n0);
        else
            EDM_LAUNCH(edm_fir_down_kernel, grid, th, 0, c->stream, out->data, (int)out->dtype,
                       in->data, (int)in->dtype, f, filter->h, pad, in->c, in->h, in->w, out->h,
                       out->w, n0);
    });
    return edm_cuda_check(c, msg, up ? "fir_up" : "fir_down");
}

int edm_cuda_fir_down(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                      int pad, char *msg) {
    return fir_resample(ctx, out, in, filter, pad, false, msg);
}

int edm_cuda_fir_up(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *filter,
                    int pad, char *msg) {
    return fir_resample(ctx, out, in, filter, pad, true, msg);
}

int edm_cuda_bias_residual(void *ctx, edm_tensor *out, const edm_tensor *in,
                           const edm_tensor *bias, const edm_tensor *residual, float scale,
                           char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_BIAS_RESIDUAL, out, in, bias, residual, NULL, NULL);
    r.f[0] = scale;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg) || need_f32(bias, "bias", msg) ||
        edm_cuda_epilogue(c, msg, out, in, bias ? (const float *)bias->data : NULL, residual,
                          scale))
        return 1;
    return edm_cuda_check(c, msg, "bias_residual");
}

int edm_cuda_concat(void *ctx, edm_tensor *out, const edm_tensor *a, const edm_tensor *b,
                    char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_CONCAT, out, a, b, NULL, NULL, NULL);
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;
    if (a->data == out->data || b->data == out->data)
        return edm_cuda_fail(msg, "inputs must not alias out");
    if (image_fits(out, msg)) return 1;
    const int P = out->h * out->w, row = out->c * P;
    const unsigned th = edm_cuda_row_threads(row);
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        EDM_LAUNCH(edm_concat_kernel, edm_cuda_grid(row, th, 1, nz), th, 0, c->stream, out->data,
                   (int)out->dtype, a->data, (int)a->dtype, b->data, (int)b->dtype, a->c, b->c, P,
                   n0);
    });
    return edm_cuda_check(c, msg, "concat");
}

int edm_cuda_embed(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *freqs,
                   int swap, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_EMBED, out, x, freqs, NULL, NULL, NULL);
    r.i[0] = swap;
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;
    const int half = (int)edm_tensor_numel(freqs);
    const unsigned th = edm_cuda_row_threads(2 * half);
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        EDM_LAUNCH(edm_embed_kernel, edm_cuda_grid(2 * half, th, 1, nz), th, 0, c->stream,
                   out->data, (int)out->dtype, x->data, (int)x->dtype, freqs->data,
                   (int)freqs->dtype, half, swap, n0);
    });
    return edm_cuda_check(c, msg, "embed");
}

int edm_cuda_scale_rows(void *ctx, edm_tensor *out, const edm_tensor *in, const edm_tensor *coef,
                        char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_SCALE_ROWS, out, in, coef, NULL, NULL, NULL);
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;
    const int row = out->c * out->h * out->w;
    const unsigned th = edm_cuda_row_threads(row);
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        EDM_LAUNCH(edm_scale_rows_kernel, edm_cuda_grid(row, th, 1, nz), th, 0, c->stream,
                   out->data, (int)out->dtype, in->data, (int)in->dtype, coef->data,
                   (int)coef->dtype, row, n0);
    });
    return edm_cuda_check(c, msg, "scale_rows");
}

int edm_cuda_precond_out(void *ctx, edm_tensor *out, const edm_tensor *x, const edm_tensor *F,
                         const edm_tensor *c_skip, const edm_tensor *c_out, char *msg) {
    edm_cuda *c = (edm_cuda *)ctx;
    edm_cuda_oprec r = edm_cuda_rec(EDM_CUDA_OP_PRECOND_OUT, out, x, F, c_skip, c_out, NULL);
    const int route = edm_cuda_op_enter(c, &r, msg);
    if (route) return route < 0; /* recorded for a graph replay, or an error */
    if (edm_cuda_enter(c, msg)) return 1;
    const int P = out->h * out->w, row = out->c * P;
    const unsigned th = edm_cuda_row_threads(row);
    edm_cuda_for_images(out->n, [&](int n0, int nz) {
        EDM_LAUNCH(edm_precond_out_kernel, edm_cuda_grid(row, th, 1, nz), th, 0, c->stream,
                   out->data, (int)out->dtype, x->data, (int)x->dtype, F->data, (int)F->dtype,
                   c_skip->data, (int)c_skip->dtype, c_out->data, (int)c_out->dtype, out->c,
                   F->c, row, n0);
    });
    return edm_cuda_check(c, msg, "precond_out");
}
