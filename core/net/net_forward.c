/*
 * net_forward.c - one forward pass of SongUNet or DhariwalUNet as a sequence of ops.
 *
 * Mapping (spec 1.8/1.9): the noise embedding, then the label/augment terms and two layers;
 * the two families differ in where the label enters, whether sin/cos are swapped, and where
 * the activations are. Encoder: every non-aux module's output is pushed on `skips`; the aux
 * paths of SongUNet rewrite the last skip. Decoder: blocks concatenate a popped skip; block
 * outputs ping-pong between two buffers sized once for the largest decoder activation, so
 * the decoder does not grow the workspace module by module.
 */
#include <math.h>

#include "net.h"

static void mapping(const edm_net *net, edm_backend *b, edm_arena *a, const edm_net_inputs *in,
                    edm_tensor *emb) {
    const int N = in->x.n, song = net->cfg.arch == EDM_ARCH_SONG;
    edm_tensor e = edm_tensor_shape(N, net->noise_channels, 1, 1, EDM_F32);
    edm_arena_alloc(a, b, &e);
    edm_op_embed(b, &e, &in->c_noise, &net->freqs, song);
    if (song && net->has_label)
        edm_op_linear(b, &e, &in->labels, &net->map_label.weight, &net->map_label.bias,
                      (float)sqrt((double)net->cfg.label_dim), 1.0f, 0);
    if (net->has_augment && in->augment.data)
        edm_op_linear(b, &e, &in->augment, &net->map_augment.weight, NULL, 1.0f, 1.0f, 0);
    edm_tensor e0 = edm_tensor_shape(N, net->emb_channels, 1, 1, EDM_F32);
    edm_arena_alloc(a, b, &e0);
    edm_op_linear(b, &e0, &e, &net->map_layer0.weight, &net->map_layer0.bias, 1.0f, 0.0f, 1);
    /* Dhariwal adds the label after map_layer1 and applies silu only after that. */
    int label_after = !song && net->has_label;
    edm_op_linear(b, emb, &e0, &net->map_layer1.weight, &net->map_layer1.bias, 1.0f, 0.0f,
                  !label_after);
    if (label_after)
        edm_op_linear(b, emb, &in->labels, &net->map_label.weight, NULL, 1.0f, 1.0f, 1);
}

/* Output shape of a block given its input. */
static edm_tensor block_out_shape(const edm_block *blk, const edm_tensor *x) {
    int h = blk->up ? x->h * 2 : blk->down ? x->h / 2 : x->h;
    int w = blk->up ? x->w * 2 : blk->down ? x->w / 2 : x->w;
    return edm_tensor_shape(x->n, blk->out, h, w, x->dtype);
}

void edm_net_forward(const edm_net *net, edm_backend *b, edm_arena *a, const edm_net_inputs *in,
                     edm_tensor *out) {
    const int N = in->x.n;
    const enum edm_dtype dt = in->x.dtype;
    edm_tensor emb = edm_tensor_shape(N, net->emb_channels, 1, 1, EDM_F32);
    edm_arena_alloc(a, b, &emb);
    mapping(net, b, a, in, &emb);

    /* ---- encoder ---- */
    edm_tensor skips[EDM_MAX_MODULES];
    int n_skips = 0;
    edm_tensor x = in->x, aux = in->x;
    for (int i = 0; i < net->n_enc; i++) {
        const edm_module *m = &net->enc[i];
        edm_tensor t;
        switch (m->kind) {
        case EDM_MOD_CONV:
            t = edm_tensor_shape(N, m->conv.out, x.h, x.w, dt);
            edm_arena_alloc(a, b, &t);
            edm_conv_forward(&m->conv, b, a, &t, &x, NULL, 1.0f);
            x = skips[n_skips++] = t;
            break;
        case EDM_MOD_BLOCK:
            t = block_out_shape(&m->block, &x);
            edm_arena_alloc(a, b, &t);
            edm_block_forward(&m->block, b, a, &t, &x, &emb);
            x = skips[n_skips++] = t;
            break;
        case EDM_MOD_AUX_DOWN:
            t = edm_tensor_shape(N, aux.c, aux.h / 2, aux.w / 2, dt);
            edm_arena_alloc(a, b, &t);
            edm_conv_forward(&m->conv, b, a, &t, &aux, NULL, 1.0f);
            aux = t;
            break;
        case EDM_MOD_AUX_SKIP:
            /* x = skips[-1] = x + conv(aux), in place: x is the last skip. */
            edm_conv_forward(&m->conv, b, a, &x, &aux, &x, 1.0f);
            break;
        case EDM_MOD_AUX_RESIDUAL:
            t = edm_tensor_shape(N, x.c, x.h, x.w, dt);
            edm_arena_alloc(a, b, &t);
            edm_conv_forward(&m->conv, b, a, &t, &aux, &x, (float)(1.0 / sqrt(2.0)));
            x = skips[n_skips - 1] = aux = t;
            break;
        default: edm_backend_fail(b, "network", "module %s is not an encoder module", m->name);
        }
    }

    /* ---- decoder: ping-pong buffers sized for the largest activation ---- */
    int64_t max_out = 0, max_cat = 0;
    {
        edm_tensor probe = x;
        for (int i = 0; i < net->n_dec; i++) {
            const edm_module *m = &net->dec[i];
            if (m->kind != EDM_MOD_BLOCK) continue;
            probe.c = m->block.in;
            if (m->concat && edm_tensor_numel(&probe) > max_cat) max_cat = edm_tensor_numel(&probe);
            probe = block_out_shape(&m->block, &probe);
            if (edm_tensor_numel(&probe) > max_out) max_out = edm_tensor_numel(&probe);
        }
    }
    edm_tensor buf[2], cat;
    for (int k = 0; k < 2; k++) {
        buf[k] = edm_tensor_shape((int)max_out, 1, 1, 1, dt);
        edm_arena_alloc(a, b, &buf[k]);
    }
    cat = edm_tensor_shape(max_cat > 0 ? (int)max_cat : 1, 1, 1, 1, dt);
    edm_arena_alloc(a, b, &cat);
    int which = 0;
    edm_tensor daux = {0}, tmp = {0};
    for (int i = 0; i < net->n_dec; i++) {
        const edm_module *m = &net->dec[i];
        edm_tensor t;
        switch (m->kind) {
        case EDM_MOD_BLOCK: {
            edm_tensor src = x;
            if (m->concat) {
                if (n_skips <= 0) {
                    edm_backend_fail(b, "network", "%s: no skip left to concatenate", m->name);
                    return;
                }
                edm_tensor s = skips[--n_skips];
                edm_tensor c = edm_tensor_shape(N, x.c + s.c, x.h, x.w, dt);
                c.data = cat.data;
                edm_op_concat(b, &c, &x, &s);
                src = c;
            }
            t = block_out_shape(&m->block, &src);
            t.data = buf[which].data;
            which ^= 1;
            edm_block_forward(&m->block, b, a, &t, &src, &emb);
            x = t;
            break;
        }
        case EDM_MOD_AUX_UP:
            t = edm_tensor_shape(N, daux.c, daux.h * 2, daux.w * 2, dt);
            edm_arena_alloc(a, b, &t);
            edm_conv_forward(&m->conv, b, a, &t, &daux, NULL, 1.0f);
            daux = t;
            break;
        case EDM_MOD_AUX_NORM:
            tmp = edm_tensor_shape(N, x.c, x.h, x.w, dt);
            edm_arena_alloc(a, b, &tmp);
            edm_op_group_norm(b, &tmp, &x, &m->norm.weight, &m->norm.bias, m->norm.groups,
                              m->norm.eps, NULL, NULL, 1);
            break;
        case EDM_MOD_AUX_CONV:
            t = edm_tensor_shape(N, m->conv.out, x.h, x.w, dt);
            edm_arena_alloc(a, b, &t);
            edm_conv_forward(&m->conv, b, a, &t, &tmp, daux.data ? &daux : NULL, 1.0f);
            daux = t;
            break;
        default: edm_backend_fail(b, "network", "module %s is not a decoder module", m->name);
        }
    }

    if (net->cfg.arch == EDM_ARCH_SONG) {
        if (!daux.data && !b->failed) {
            edm_backend_fail(b, "network", "SongUNet decoder produced no output");
            return;
        }
        edm_op_bias_residual(b, out, &daux, NULL, NULL, 1.0f); /* copy */
        return;
    }
    edm_tensor t = edm_tensor_shape(N, x.c, x.h, x.w, dt);
    edm_arena_alloc(a, b, &t);
    edm_op_group_norm(b, &t, &x, &net->out_norm.weight, &net->out_norm.bias, net->out_norm.groups,
                      net->out_norm.eps, NULL, NULL, 1);
    edm_conv_forward(&net->out_conv, b, a, out, &t, NULL, 1.0f);
}
