/*
 * net_build.c - building a network description from a configuration (spec 1.2-1.5, 1.10).
 *
 * The helpers here register layers and their tensors in state_dict order: a module's own
 * parameters first (weight, bias), then its persistent buffers (resample_filter), then its
 * children in registration order. The architecture files (net_song.c, net_dhariwal.c) call
 * them in the order the official constructors create modules, so the parameter list is the
 * official state_dict, name for name and shape for shape.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net.h"
#include "status.h"

enum edm_status edm_net_param(edm_net *net, edm_error *err, edm_tensor *t, int act_dtype,
                              const char *name, int ndim, int d0, int d1, int d2, int d3) {
    if (net->n_params >= EDM_MAX_PARAMS)
        return edm_error_set(err, EDM_EFORMAT, "network has more than %d tensors", EDM_MAX_PARAMS);
    edm_param *p = &net->params[net->n_params++];
    memset(p, 0, sizeof *p);
    if (snprintf(p->name, sizeof p->name, "%s", name) >= (int)sizeof p->name)
        return edm_error_set(err, EDM_EFORMAT, "tensor name too long: %s", name);
    p->ndim = ndim;
    int d[4] = {d0, d1, d2, d3};
    for (int i = 0; i < 4; i++) p->shape[i] = i < ndim ? d[i] : 1;
    p->act_dtype = act_dtype;
    p->t = t;
    /* The tensor's logical shape: [d0, d1, d2, d3] with missing trailing dims = 1. */
    *t = edm_tensor_shape(p->shape[0], p->shape[1], p->shape[2], p->shape[3], EDM_F32);
    return EDM_OK;
}

enum edm_status edm_net_linear(edm_net *net, edm_error *err, edm_linear *l, const char *prefix,
                               int in, int out, int bias) {
    char name[EDM_NAME_MAX];
    l->in = in;
    l->out = out;
    l->has_bias = bias;
    snprintf(name, sizeof name, "%s.weight", prefix);
    enum edm_status st = edm_net_param(net, err, &l->weight, 0, name, 2, out, in, 0, 0);
    if (st || !bias) return st;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return edm_net_param(net, err, &l->bias, 0, name, 1, out, 0, 0, 0);
}

enum edm_status edm_net_conv(edm_net *net, edm_error *err, edm_conv *c, const char *prefix, int in,
                             int out, const edm_conv_opts *o) {
    char name[EDM_NAME_MAX];
    enum edm_status st = EDM_OK;
    const int up = o->up, down = o->down, filter_len = o->filter_len;
    memset(c, 0, sizeof *c);
    c->in = in;
    c->out = out;
    c->kernel = o->kernel;
    c->up = up;
    c->down = down;
    c->fused = o->fused;
    c->has_bias = o->kernel && o->bias;
    c->filter_len = (up || down) ? filter_len : 0;
    if (o->kernel) {
        snprintf(name, sizeof name, "%s.weight", prefix);
        st = edm_net_param(net, err, &c->weight, 1, name, 4, out, in, o->kernel, o->kernel);
        if (st) return st;
    }
    if (c->has_bias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        st = edm_net_param(net, err, &c->bias, 0, name, 1, out, 0, 0, 0);
        if (st) return st;
    }
    if (up || down) {
        snprintf(name, sizeof name, "%s.resample_filter", prefix);
        st = edm_net_param(net, err, &c->filter, 0, name, 4, 1, 1, filter_len, filter_len);
    }
    return st;
}

enum edm_status edm_net_gnorm(edm_net *net, edm_error *err, edm_gnorm *g, const char *prefix,
                              int channels, float eps) {
    char name[EDM_NAME_MAX];
    g->channels = channels;
    g->groups = channels / 4 < 32 ? channels / 4 : 32;
    g->eps = eps;
    if (g->groups < 1 || channels % g->groups != 0)
        return edm_error_set(err, EDM_EFORMAT,
                             "%s: GroupNorm over %d channels needs a channel count divisible by "
                             "min(32, C/4) = %d",
                             prefix, channels, g->groups);
    snprintf(name, sizeof name, "%s.weight", prefix);
    enum edm_status st = edm_net_param(net, err, &g->weight, 0, name, 1, channels, 0, 0, 0);
    if (st) return st;
    snprintf(name, sizeof name, "%s.bias", prefix);
    return edm_net_param(net, err, &g->bias, 0, name, 1, channels, 0, 0, 0);
}

enum edm_status edm_net_module(edm_net *net, edm_error *err, int decoder,
                               enum edm_module_kind kind, int res, const char *suffix,
                               edm_module **out, char prefix[EDM_NAME_MAX]) {
    int *count = decoder ? &net->n_dec : &net->n_enc;
    edm_module *list = decoder ? net->dec : net->enc;
    if (*count >= EDM_MAX_MODULES)
        return edm_error_set(err, EDM_EFORMAT, "network has more than %d modules", EDM_MAX_MODULES);
    edm_module *m = &list[(*count)++];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    snprintf(m->name, sizeof m->name, "%dx%d_%s", res, res, suffix);
    snprintf(prefix, EDM_NAME_MAX, "model.%s.%s", decoder ? "dec" : "enc", m->name);
    m->res = res;
    *out = m;
    return EDM_OK;
}

int edm_config_has_attn(const edm_config *cfg, int res) {
    for (int i = 0; i < cfg->num_attn_res; i++)
        if (cfg->attn_resolutions[i] == res) return 1;
    return 0;
}

enum edm_status edm_net_encoder_head(edm_net *net, edm_error *err, int level, int res,
                                     int first_out, int *cout, edm_block_opts bo, int *skips,
                                     int *n_skips) {
    char prefix[EDM_NAME_MAX];
    edm_module *m;
    enum edm_status st;
    if (level == 0) {
        if ((st = edm_net_module(net, err, 0, EDM_MOD_CONV, res, "conv", &m, prefix))) return st;
        if ((st = edm_net_conv(net, err, &m->conv, prefix, *cout, first_out,
                               &(edm_conv_opts){.kernel = 3, .bias = 1})))
            return st;
        *cout = first_out;
    } else {
        bo.down = 1, bo.attention = 0;
        if ((st = edm_net_module(net, err, 0, EDM_MOD_BLOCK, res, "down", &m, prefix))) return st;
        if ((st = edm_net_block(net, err, &m->block, prefix, *cout, *cout, &bo))) return st;
    }
    skips[(*n_skips)++] = *cout;
    return EDM_OK;
}

enum edm_status edm_net_encoder_blocks(edm_net *net, edm_error *err, int res, int *cout,
                                       int out, edm_block_opts bo, int *skips, int *n_skips) {
    char suffix[32], prefix[EDM_NAME_MAX];
    edm_module *m;
    enum edm_status st;
    bo.attention = edm_config_has_attn(&net->cfg, res);
    for (int idx = 0; idx < net->cfg.num_blocks; idx++) {
        snprintf(suffix, sizeof suffix, "block%d", idx);
        if ((st = edm_net_module(net, err, 0, EDM_MOD_BLOCK, res, suffix, &m, prefix))) return st;
        if ((st = edm_net_block(net, err, &m->block, prefix, *cout, out, &bo))) return st;
        *cout = out;
        skips[(*n_skips)++] = out;
    }
    return EDM_OK;
}

enum edm_status edm_net_decoder_blocks(edm_net *net, edm_error *err, int res, int *cout, int out,
                                       edm_block_opts bo, int attn_last_only, const int *skips,
                                       int *n_skips) {
    char suffix[32], prefix[EDM_NAME_MAX];
    edm_module *m;
    enum edm_status st;
    const int nb = net->cfg.num_blocks, attn = edm_config_has_attn(&net->cfg, res);
    for (int idx = 0; idx <= nb; idx++) {
        if (*n_skips <= 0) return edm_error_set(err, EDM_EFORMAT, "decoder has no skip left");
        int skip_ch = skips[--*n_skips];
        bo.attention = attn && (!attn_last_only || idx == nb);
        snprintf(suffix, sizeof suffix, "block%d", idx);
        if ((st = edm_net_module(net, err, 1, EDM_MOD_BLOCK, res, suffix, &m, prefix))) return st;
        if ((st = edm_net_block(net, err, &m->block, prefix, *cout + skip_ch, out, &bo))) return st;
        m->concat = skip_ch;
        *cout = out;
    }
    return EDM_OK;
}

enum edm_status edm_net_decoder_head(edm_net *net, edm_error *err, int deepest, int res,
                                     int channels, edm_block_opts bo) {
    char prefix[EDM_NAME_MAX];
    edm_module *m;
    enum edm_status st;
    bo.attention = 0;
    if (!deepest) {
        bo.up = 1;
        if ((st = edm_net_module(net, err, 1, EDM_MOD_BLOCK, res, "up", &m, prefix))) return st;
        return edm_net_block(net, err, &m->block, prefix, channels, channels, &bo);
    }
    /* in0 has attention whatever attn_resolutions says; in1 never does. */
    bo.attention = 1;
    if ((st = edm_net_module(net, err, 1, EDM_MOD_BLOCK, res, "in0", &m, prefix))) return st;
    if ((st = edm_net_block(net, err, &m->block, prefix, channels, channels, &bo))) return st;
    bo.attention = 0;
    if ((st = edm_net_module(net, err, 1, EDM_MOD_BLOCK, res, "in1", &m, prefix))) return st;
    return edm_net_block(net, err, &m->block, prefix, channels, channels, &bo);
}

/* UNetBlock (spec 1.5): submodules in registration order. */
enum edm_status edm_net_block(edm_net *net, edm_error *err, edm_block *b, const char *prefix,
                              int in, int out, const edm_block_opts *o) {
    char name[EDM_NAME_MAX];
    enum edm_status st;
    memset(b, 0, sizeof *b);
    b->in = in;
    b->out = out;
    b->up = o->up;
    b->down = o->down;
    b->adaptive_scale = o->adaptive_scale;
    b->skip_scale = o->skip_scale;
    b->heads = !o->attention ? 0 : o->num_heads > 0 ? o->num_heads : out / o->channels_per_head;
    b->has_skip = out != in || o->up || o->down;

    /* conv0 and the skip resample as the block does; conv1, qkv and proj do not */
    const edm_conv_opts conv0 = {
        .kernel = 3, .bias = 1, .up = o->up, .down = o->down, .filter_len = o->filter_len};
    const edm_conv_opts conv3x3 = {.kernel = 3, .bias = 1}, conv1x1 = {.kernel = 1, .bias = 1};
    edm_conv_opts skip = conv0;
    skip.kernel = (o->resample_proj || out != in) ? 1 : 0;

#define SUB(fmt) (snprintf(name, sizeof name, "%s." fmt, prefix), name)
    if ((st = edm_net_gnorm(net, err, &b->norm0, SUB("norm0"), in, o->eps))) return st;
    if ((st = edm_net_conv(net, err, &b->conv0, SUB("conv0"), in, out, &conv0))) return st;
    if ((st = edm_net_linear(net, err, &b->affine, SUB("affine"), o->emb,
                             out * (o->adaptive_scale ? 2 : 1), 1)))
        return st;
    if ((st = edm_net_gnorm(net, err, &b->norm1, SUB("norm1"), out, o->eps))) return st;
    if ((st = edm_net_conv(net, err, &b->conv1, SUB("conv1"), out, out, &conv3x3))) return st;
    if (b->has_skip && (st = edm_net_conv(net, err, &b->skip, SUB("skip"), in, out, &skip)))
        return st;
    if (b->heads) {
        if (out % b->heads != 0)
            return edm_error_set(err, EDM_EFORMAT, "%s: %d channels not divisible by %d heads",
                                 prefix, out, b->heads);
        if ((st = edm_net_gnorm(net, err, &b->norm2, SUB("norm2"), out, o->eps))) return st;
        if ((st = edm_net_conv(net, err, &b->qkv, SUB("qkv"), out, out * 3, &conv1x1))) return st;
        if ((st = edm_net_conv(net, err, &b->proj, SUB("proj"), out, out, &conv1x1))) return st;
    }
#undef SUB
    return EDM_OK;
}

enum edm_status edm_net_build(const edm_config *cfg, edm_net **out, edm_error *err) {
    *out = NULL;
    edm_net *net = calloc(1, sizeof *net);
    if (!net) return edm_error_set(err, EDM_ENOMEM, "out of memory building the network");
    net->cfg = *cfg;
    net->enc = calloc(EDM_MAX_MODULES, sizeof *net->enc);
    net->dec = calloc(EDM_MAX_MODULES, sizeof *net->dec);
    net->params = calloc(EDM_MAX_PARAMS, sizeof *net->params);
    enum edm_status st;
    if (!net->enc || !net->dec || !net->params) {
        st = edm_error_set(err, EDM_ENOMEM, "out of memory building the network");
        goto fail;
    }
    net->in_channels = cfg->img_channels;
    net->out_channels = cfg->img_channels * (cfg->precond == EDM_PRECOND_IDDPM ? 2 : 1);
    net->has_label = cfg->label_dim > 0;
    net->has_augment = cfg->augment_dim > 0;
    if (cfg->precond == EDM_PRECOND_IDDPM) {
        st = edm_net_param(net, err, &net->u, 0, "u", 1, (int)cfg->M + 1, 0, 0, 0);
        if (st) goto fail;
    }
    st = cfg->arch == EDM_ARCH_SONG ? edm_net_build_song(net, err)
                                    : edm_net_build_dhariwal(net, err);
    if (st) goto fail;
    *out = net;
    return EDM_OK;
fail:
    edm_net_free(net);
    return st;
}

void edm_net_free(edm_net *net) {
    if (!net) return;
    free(net->enc);
    free(net->dec);
    free(net->params);
    free(net->positional_freqs);
    free(net);
}
