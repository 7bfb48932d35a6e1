/*
 * op_reference.h - plain reference implementations of every op in core/ops.h, for the op
 * tests of every backend (test_ops.c).
 *
 * Host float arrays in, host float arrays out, NCHW with explicit dimensions: no backend, no
 * tensors, no threads. Every sum is accumulated in double and each formula is written the
 * obvious way, straight from the ops.h comment (spec section 1), so that a reader can check
 * it by eye. Outputs are written in full (no aliasing allowed here: the tests keep separate
 * copies of aliased operands).
 */
#ifndef OP_REFERENCE_H
#define OP_REFERENCE_H

#include <stdint.h>

/* conv2d: out[N,Co,Ho,Wo] = (conv(in[N,Ci,H,W], w[Co,Ci,k,k], stride 1, zero pad) + bias[Co]
 * + res[N,Co,Ho,Wo]) * scale, Ho = H + 2 pad - k + 1. bias and res may be NULL. */
void ref_conv2d(float *out, const float *in, const float *w, const float *bias, const float *res,
                float scale, int N, int Ci, int H, int W, int Co, int k, int pad);

/* fir_down: out[N,C,Ho,Wo] = sum_{a,b} f[a,b] in[n,c,2m+a-pad,2q+b-pad] (zero outside). */
void ref_fir_down(float *out, const float *in, const float *f, int L, int pad, int N, int C, int H,
                  int W, int Ho, int Wo);

/* fir_up: out[N,C,2H,2W] = sum over 2i+a-pad = Y, 2j+b-pad = X of 4 f[a,b] in[n,c,i,j]. */
void ref_fir_up(float *out, const float *in, const float *f, int L, int pad, int N, int C, int H,
                int W);

/* linear: out[N,O] = act(beta*out + (alpha*in[N,K]) . w[O,K]^T + b[O]); out is read when
 * beta != 0. b may be NULL; act = silu when act_silu. */
void ref_linear(float *out, const float *in, const float *w, const float *b, float alpha,
                float beta, int act_silu, int N, int K, int O);

/* group_norm over in[N,C,HW] with groups G (see ops.h); pre_add [N,C], scale_shift [N,2C]
 * (scale first) may be NULL. */
void ref_group_norm(float *out, const float *in, const float *gamma, const float *beta, int G,
                    float eps, const float *pre_add, const float *scale_shift, int act_silu, int N,
                    int C, int HW);

/* bias_residual: out = (in + bias[c] + res) * scale over [N,C,HW]; bias/res may be NULL. */
void ref_bias_residual(float *out, const float *in, const float *bias, const float *res,
                       float scale, int N, int C, int HW);

/* concat: out[N, Ca+Cb, HW] = [a | b]. */
void ref_concat(float *out, const float *a, const float *b, int N, int Ca, int Cb, int HW);

/* attention on interleaved qkv[N, 3C, P] with `heads` heads; out[N, C, P]. */
void ref_attention(float *out, const float *qkv, int N, int C, int P, int heads);

/* embed: out[N, 2*half] = [cos(x f) | sin(x f)] ([sin | cos] when swap), x*f rounded to fp32. */
void ref_embed(float *out, const float *x, const float *freqs, int N, int half, int swap);

/* scale_rows: out[n, i] = coef[n] * in[n, i], row = elements per sample. */
void ref_scale_rows(float *out, const float *in, const float *coef, int N, int64_t row);

/* precond_out: out[n,c,p] = c_skip[n] x[n,c,p] + c_out[n] F[n,c,p]; F has CF >= C channels. */
void ref_precond_out(float *out, const float *x, const float *F, const float *c_skip,
                     const float *c_out, int N, int C, int CF, int HW);

#endif /* OP_REFERENCE_H */
