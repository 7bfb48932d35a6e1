/*
 * net_song.c - the SongUNet (DDPM++ / NCSN++) description (spec 1.8).
 *
 * Mirrors the official constructor's module order, so the registered parameters are the
 * official state_dict: map_noise.freqs (Fourier), map_label, map_augment, map_layer0,
 * map_layer1, then enc.* and dec.* in insertion order. Every block has one attention head,
 * skip_scale sqrt(1/2), eps 1e-6, resample_proj and no adaptive scale.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "net.h"
#include "status.h"

static enum edm_status song_mapping(edm_net *net, edm_error *err) {
    const edm_config *cfg = &net->cfg;
    enum edm_status st;
    int Cn = net->noise_channels, E = net->emb_channels;
    if (Cn < 2 || Cn % 2)
        return edm_error_set(err, EDM_EFORMAT, "noise embedding width %d must be even", Cn);
    if (cfg->embedding_type == EDM_EMBED_FOURIER) {
        st = edm_net_param(net, err, &net->freqs, 0, "model.map_noise.freqs", 1, Cn / 2, 0, 0, 0);
        if (st) return st;
        net->params[net->n_params - 1].fourier_freqs = 1;
    } else {
        /* PositionalEmbedding(endpoint=True): freq_i = (1/10000)^(i/(half-1)), in fp32. */
        int half = Cn / 2;
        if (half < 2)
            return edm_error_set(err, EDM_EFORMAT, "positional embedding needs 4+ channels");
        net->positional_freqs = malloc(sizeof(float) * (size_t)half);
        if (!net->positional_freqs) return edm_error_set(err, EDM_ENOMEM, "out of memory");
        for (int i = 0; i < half; i++)
            net->positional_freqs[i] = powf(1.0f / 10000.0f, (float)i / (float)(half - 1));
        net->freqs = edm_tensor_shape(half, 1, 1, 1, EDM_F32);
    }
    if (net->has_label &&
        (st = edm_net_linear(net, err, &net->map_label, "model.map_label", cfg->label_dim, Cn, 1)))
        return st;
    if (net->has_augment && (st = edm_net_linear(net, err, &net->map_augment, "model.map_augment",
                                                 cfg->augment_dim, Cn, 0)))
        return st;
    if ((st = edm_net_linear(net, err, &net->map_layer0, "model.map_layer0", Cn, E, 1))) return st;
    return edm_net_linear(net, err, &net->map_layer1, "model.map_layer1", E, E, 1);
}

enum edm_status edm_net_build_song(edm_net *net, edm_error *err) {
    const edm_config *cfg = &net->cfg;
    const int mc = cfg->model_channels, R = cfg->img_resolution, L = cfg->num_levels;
    char prefix[EDM_NAME_MAX];
    enum edm_status st;
    net->emb_channels = mc * cfg->channel_mult_emb;
    net->noise_channels = mc * cfg->channel_mult_noise;
    if ((st = song_mapping(net, err))) return st;

    edm_block_opts bo = {
        .emb = net->emb_channels,
        .num_heads = 1,
        .channels_per_head = 64,
        .adaptive_scale = 0,
        .resample_proj = 1,
        .filter_len = cfg->resample_filter_len,
        .skip_scale = (float)sqrt(0.5),
        .eps = 1e-6f,
    };
    /* the auxiliary path's convs (encoder_type / decoder_type skip and residual) */
    const int fl = cfg->resample_filter_len;
    const edm_conv_opts fir_down = {.down = 1, .filter_len = fl},
                        fir_up = {.up = 1, .filter_len = fl};
    const edm_conv_opts conv1x1 = {.kernel = 1, .bias = 1}, conv3x3 = {.kernel = 3, .bias = 1};
    const edm_conv_opts conv3x3_down = {
        .kernel = 3, .bias = 1, .down = 1, .fused = 1, .filter_len = fl};
    int skips[EDM_MAX_MODULES], n_skips = 0;
    int cout = net->in_channels, caux = net->in_channels;
    edm_module *m;
#define ADD(dec, kind, sfx)                                                                    \
    do {                                                                                       \
        if ((st = edm_net_module(net, err, dec, kind, res, sfx, &m, prefix))) return st;       \
    } while (0)

    for (int level = 0; level < L; level++) {
        int res = R >> level, mult = cfg->channel_mult[level];
        if ((st = edm_net_encoder_head(net, err, level, res, mc, &cout, bo, skips, &n_skips)))
            return st;
        if (level > 0) {
            if (cfg->encoder_type == EDM_ENCODER_SKIP) {
                ADD(0, EDM_MOD_AUX_DOWN, "aux_down");
                if ((st = edm_net_conv(net, err, &m->conv, prefix, caux, caux, &fir_down)))
                    return st;
                ADD(0, EDM_MOD_AUX_SKIP, "aux_skip");
                if ((st = edm_net_conv(net, err, &m->conv, prefix, caux, cout, &conv1x1)))
                    return st;
            }
            if (cfg->encoder_type == EDM_ENCODER_RESIDUAL) {
                ADD(0, EDM_MOD_AUX_RESIDUAL, "aux_residual");
                if ((st = edm_net_conv(net, err, &m->conv, prefix, caux, cout, &conv3x3_down)))
                    return st;
                caux = cout;
            }
        }
        if ((st = edm_net_encoder_blocks(net, err, res, &cout, mc * mult, bo, skips, &n_skips)))
            return st;
    }

    for (int level = L - 1; level >= 0; level--) {
        int res = R >> level, mult = cfg->channel_mult[level];
        if ((st = edm_net_decoder_head(net, err, level == L - 1, res, cout, bo))) return st;
        if ((st = edm_net_decoder_blocks(net, err, res, &cout, mc * mult, bo, 1, skips,
                                         &n_skips)))
            return st;
        if (cfg->decoder_type == EDM_DECODER_SKIP || level == 0) {
            if (cfg->decoder_type == EDM_DECODER_SKIP && level < L - 1) {
                ADD(1, EDM_MOD_AUX_UP, "aux_up");
                if ((st = edm_net_conv(net, err, &m->conv, prefix, net->out_channels,
                                       net->out_channels, &fir_up)))
                    return st;
            }
            ADD(1, EDM_MOD_AUX_NORM, "aux_norm");
            if ((st = edm_net_gnorm(net, err, &m->norm, prefix, cout, 1e-6f))) return st;
            ADD(1, EDM_MOD_AUX_CONV, "aux_conv");
            if ((st = edm_net_conv(net, err, &m->conv, prefix, cout, net->out_channels, &conv3x3)))
                return st;
        }
    }
#undef ADD
    return EDM_OK;
}
