/*
 * net_dhariwal.c - the DhariwalUNet (ADM) description (spec 1.9).
 *
 * Mirrors the official constructor: map_augment, map_layer0, map_layer1, map_label, enc.*,
 * dec.*, out_norm, out_conv. Blocks use channels_per_head 64 (so attention disappears below
 * 64 channels), skip_scale 1, eps 1e-5, adaptive scale, [1,1] resampling and FIR-only skips.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "net.h"
#include "status.h"

enum edm_status edm_net_build_dhariwal(edm_net *net, edm_error *err) {
    const edm_config *cfg = &net->cfg;
    const int mc = cfg->model_channels, R = cfg->img_resolution, L = cfg->num_levels;
    enum edm_status st;
    net->emb_channels = mc * cfg->channel_mult_emb;
    net->noise_channels = mc;
    int E = net->emb_channels, half = mc / 2;
    if (mc < 2 || mc % 2)
        return edm_error_set(err, EDM_EFORMAT, "model_channels %d must be even", mc);

    /* PositionalEmbedding(endpoint=False): freq_i = (1/10000)^(i/half), in fp32. */
    net->positional_freqs = malloc(sizeof(float) * (size_t)half);
    if (!net->positional_freqs) return edm_error_set(err, EDM_ENOMEM, "out of memory");
    for (int i = 0; i < half; i++)
        net->positional_freqs[i] = powf(1.0f / 10000.0f, (float)i / (float)half);
    net->freqs = edm_tensor_shape(half, 1, 1, 1, EDM_F32);

    if (net->has_augment && (st = edm_net_linear(net, err, &net->map_augment, "model.map_augment",
                                                 cfg->augment_dim, mc, 0)))
        return st;
    if ((st = edm_net_linear(net, err, &net->map_layer0, "model.map_layer0", mc, E, 1))) return st;
    if ((st = edm_net_linear(net, err, &net->map_layer1, "model.map_layer1", E, E, 1))) return st;
    if (net->has_label &&
        (st = edm_net_linear(net, err, &net->map_label, "model.map_label", cfg->label_dim, E, 0)))
        return st;

    edm_block_opts bo = {
        .emb = E,
        .num_heads = 0,
        .channels_per_head = 64,
        .adaptive_scale = 1,
        .resample_proj = 0,
        .filter_len = 2,
        .skip_scale = 1.0f,
        .eps = 1e-5f,
    };
    int skips[EDM_MAX_MODULES], n_skips = 0;
    int cout = net->in_channels;

    for (int level = 0; level < L; level++) {
        int res = R >> level, mult = cfg->channel_mult[level];
        if ((st = edm_net_encoder_head(net, err, level, res, mc * mult, &cout, bo, skips,
                                       &n_skips)))
            return st;
        if ((st = edm_net_encoder_blocks(net, err, res, &cout, mc * mult, bo, skips, &n_skips)))
            return st;
    }

    for (int level = L - 1; level >= 0; level--) {
        int res = R >> level, mult = cfg->channel_mult[level];
        if ((st = edm_net_decoder_head(net, err, level == L - 1, res, cout, bo))) return st;
        if ((st = edm_net_decoder_blocks(net, err, res, &cout, mc * mult, bo, 0, skips,
                                         &n_skips)))
            return st;
    }
    if ((st = edm_net_gnorm(net, err, &net->out_norm, "model.out_norm", cout, 1e-5f))) return st;
    return edm_net_conv(net, err, &net->out_conv, "model.out_conv", cout, net->out_channels,
                        &(edm_conv_opts){.kernel = 3, .bias = 1});
}
