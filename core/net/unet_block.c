/*
 * unet_block.c - the forward pass of Conv2d modules and of the UNetBlock (spec 1.2, 1.5).
 *
 * Conv2d, standard path: FIR up/down first, then the convolution, then the bias (fused into
 * the conv's epilogue together with an optional residual and scale). The fused-down path
 * (SongUNet aux_residual only) convolves with padding w_pad+f_pad first, then FIRs with
 * stride 2 and no padding, then adds the bias.
 *
 * UNetBlock: h = conv0(silu(norm0(x))); the embedding enters through norm1 (added before the
 * norm, or as scale/shift after it); h = (conv1(h) + skip(x)) * skip_scale; with attention,
 * h = (proj(attn(qkv(norm2(h)))) + h) * skip_scale. Temporaries live on the arena above a
 * mark and are released on return; the caller owns `out`.
 */
#include "net.h"

void edm_conv_forward(const edm_conv *c, edm_backend *b, edm_arena *a, edm_tensor *out,
                      const edm_tensor *in, const edm_tensor *residual, float scale) {
    size_t mark = edm_arena_mark(a);
    const int L = c->filter_len, f_pad = L ? (L - 1) / 2 : 0, w_pad = c->kernel / 2;
    const enum edm_dtype dt = in->dtype;
    if (c->fused && c->down && c->kernel) {
        edm_tensor t = edm_tensor_shape(in->n, c->out, in->h + 2 * f_pad, in->w + 2 * f_pad, dt);
        edm_arena_alloc(a, b, &t);
        edm_op_conv2d(b, &t, in, &c->weight, NULL, w_pad + f_pad, NULL, 1.0f);
        edm_tensor r = edm_tensor_shape(in->n, c->out, out->h, out->w, dt);
        edm_arena_alloc(a, b, &r);
        edm_op_fir_down(b, &r, &t, &c->filter, 0);
        edm_op_bias_residual(b, out, &r, c->has_bias ? &c->bias : NULL, residual, scale);
        edm_arena_reset(a, mark);
        return;
    }
    edm_tensor src = *in;
    if (c->up || c->down) {
        edm_tensor r = c->up ? edm_tensor_shape(in->n, in->c, in->h * 2, in->w * 2, dt)
                             : edm_tensor_shape(in->n, in->c, in->h / 2, in->w / 2, dt);
        if (!c->kernel) {
            /* A pure resampler: write straight into out (no bias, no residual). */
            if (c->up) edm_op_fir_up(b, out, in, &c->filter, f_pad);
            else edm_op_fir_down(b, out, in, &c->filter, f_pad);
            return;
        }
        edm_arena_alloc(a, b, &r);
        if (c->up) edm_op_fir_up(b, &r, in, &c->filter, f_pad);
        else edm_op_fir_down(b, &r, in, &c->filter, f_pad);
        src = r;
    }
    edm_op_conv2d(b, out, &src, &c->weight, c->has_bias ? &c->bias : NULL, w_pad, residual, scale);
    edm_arena_reset(a, mark);
}

void edm_block_forward(const edm_block *blk, edm_backend *b, edm_arena *a, edm_tensor *out,
                       const edm_tensor *x, const edm_tensor *emb) {
    size_t mark = edm_arena_mark(a);
    const enum edm_dtype dt = x->dtype;
    const int N = x->n, Ho = out->h, Wo = out->w;

    /* h = conv0(silu(norm0(x))) */
    edm_tensor t = edm_tensor_shape(N, blk->in, x->h, x->w, dt);
    edm_arena_alloc(a, b, &t);
    edm_op_group_norm(b, &t, x, &blk->norm0.weight, &blk->norm0.bias, blk->norm0.groups,
                      blk->norm0.eps, NULL, NULL, 1);
    edm_tensor h = edm_tensor_shape(N, blk->out, Ho, Wo, dt);
    edm_arena_alloc(a, b, &h);
    edm_conv_forward(&blk->conv0, b, a, &h, &t, NULL, 1.0f);

    /* The embedding: added before norm1, or scale/shift after it (adaptive). */
    edm_tensor params = edm_tensor_shape(N, blk->affine.out, 1, 1, EDM_F32);
    edm_arena_alloc(a, b, &params);
    edm_op_linear(b, &params, emb, &blk->affine.weight, &blk->affine.bias, 1.0f, 0.0f, 0);
    if (blk->adaptive_scale)
        edm_op_group_norm(b, &h, &h, &blk->norm1.weight, &blk->norm1.bias, blk->norm1.groups,
                          blk->norm1.eps, NULL, &params, 1);
    else
        edm_op_group_norm(b, &h, &h, &blk->norm1.weight, &blk->norm1.bias, blk->norm1.groups,
                          blk->norm1.eps, &params, NULL, 1);

    /* The skip path. */
    edm_tensor skip = *x;
    if (blk->has_skip) {
        skip = edm_tensor_shape(N, blk->out, Ho, Wo, dt);
        edm_arena_alloc(a, b, &skip);
        edm_conv_forward(&blk->skip, b, a, &skip, x, NULL, 1.0f);
    }

    if (!blk->heads) {
        edm_op_conv2d(b, out, &h, &blk->conv1.weight, &blk->conv1.bias, 1, &skip, blk->skip_scale);
        edm_arena_reset(a, mark);
        return;
    }
    edm_tensor h2 = edm_tensor_shape(N, blk->out, Ho, Wo, dt);
    edm_arena_alloc(a, b, &h2);
    edm_op_conv2d(b, &h2, &h, &blk->conv1.weight, &blk->conv1.bias, 1, &skip, blk->skip_scale);

    /* Attention: reuse h for norm2's output (same shape), then qkv and the mix. */
    edm_op_group_norm(b, &h, &h2, &blk->norm2.weight, &blk->norm2.bias, blk->norm2.groups,
                      blk->norm2.eps, NULL, NULL, 0);
    edm_tensor qkv = edm_tensor_shape(N, 3 * blk->out, Ho, Wo, dt);
    edm_arena_alloc(a, b, &qkv);
    edm_op_conv2d(b, &qkv, &h, &blk->qkv.weight, &blk->qkv.bias, 0, NULL, 1.0f);
    edm_op_attention(b, &h, &qkv, blk->heads);
    edm_op_conv2d(b, out, &h, &blk->proj.weight, &blk->proj.bias, 0, &h2, blk->skip_scale);
    edm_arena_reset(a, mark);
}
